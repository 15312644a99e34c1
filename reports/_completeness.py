"""The completeness proof of a bundle, on the verifying side (docs/bundles.md, "Completeness").

The proven events of the tenant's sequence (stream `decisions/{tenant}`) arrive in position
order, which is their version order. `SequenceCheck` keeps only the previous one: versions must
be consecutive and recorded times non-decreasing; the first event is recorded before `since`
(the lower boundary) or is version 1; the last is recorded at/after `until` or is a
`DecisionsSealed` (the upper boundary). Then no decision of the tenant recorded in the period
(up to the seal's time) can be missing: it would have a version between the two boundaries."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger import Envelope
from reports._sequence import COMPLETENESS_FORMAT, SEALED, iso_us
from router.services.decisions import DECISION_MADE, tenant_stream

__all__ = ["SequenceCheck"]

_NOT_PROVEN = (
    "completeness is not proven: the bundle carries no completeness proof (it was made by a "
    "release before per-tenant decision sequences); its events are proven, but a decision of "
    "the period could be missing"
)


@dataclass(frozen=True, slots=True)
class _Seen:
    version: int
    type: str
    at: int
    event: str


class SequenceCheck:
    """Checks, event by event, that the bundle holds the tenant's whole sequence over its
    period; `finish` compares the result with the manifest's `completeness` member."""

    def __init__(self, manifest: Mapping[str, Any], since: int | None, until: int | None) -> None:
        self.tenant = str(manifest.get("tenant"))
        self.stream = tenant_stream(self.tenant)
        self.claim = manifest.get("completeness")
        self.since, self.until = since, until
        self.first: _Seen | None = None
        self.last: _Seen | None = None
        self.closed = False
        self.unsequenced = 0
        self.boundaries: set[str] = set()
        """The boundary decisions' ids: not in the data, so no attempt of theirs may be."""
        self.problems: list[str] = []

    def _problem(self, text: str) -> None:
        self.problems.append(f"completeness: {text}")

    def owns(self, envelope: Envelope) -> bool:
        """Whether the event belongs to the tenant's sequence."""
        return envelope.stream_id == self.stream

    def feed(self, envelope: Envelope) -> bool:
        """Check one event of the sequence; True when it is a decision of the bundle's data
        (recorded in the period), False for a boundary or a seal."""
        seen = _Seen(
            envelope.stream_version, envelope.type, envelope.recorded_at_us, str(envelope.event_id)
        )
        name = f"{self.stream} version {seen.version} (event {seen.event})"
        outside = self._place(seen, name)
        if seen.type == DECISION_MADE and outside:
            self._boundary_decision(envelope, name)
            self.boundaries.add(seen.event)
            return False
        return seen.type == DECISION_MADE

    def feed_inside(self, versions: list[int], ats: list[int], event_ids: list[str]) -> bool:
        """Check a run of `DecisionMade` events of the sequence at once, when each is simply
        the next one — its version follows, it is not recorded earlier, and inside the period
        after the first event — and return True: they are all decisions of the data. Anything
        else returns False and checks nothing: the caller feeds them one by one (`feed`)."""
        previous = self.last
        if previous is None or self.closed or not versions:
            return False
        since, until = self.since, self.until
        if (since is not None and ats[0] < since) or (until is not None and ats[-1] >= until):
            return False
        if versions[0] != previous.version + 1 or ats[0] < previous.at:
            return False
        if versions != list(range(versions[0], versions[0] + len(versions))) or ats != sorted(ats):
            return False
        self.last = _Seen(versions[-1], DECISION_MADE, ats[-1], event_ids[-1])
        return True

    def feed_row(self, version: int, at: int, decision_id: str) -> None:
        """Check a decision of exported data by its `sequence` number and time (recorded in the
        period: the caller checks), in its place among the proven events."""
        seen = _Seen(version, DECISION_MADE, at, decision_id)
        self._place(seen, f"{self.stream} version {version} (decision {decision_id})")

    def _place(self, seen: _Seen, name: str) -> bool:
        """Check the next event of the sequence against the one before it; True when it is
        recorded outside the period."""
        if seen.type not in (DECISION_MADE, SEALED):
            self._problem(f"{name} is a {seen.type}, not a decision or a seal")
        previous = self.last
        if previous is None:
            self.first = seen
        else:
            if seen.version != previous.version + 1:
                self._problem(
                    f"the bundle goes from {self.stream} version {previous.version} to version "
                    f"{seen.version}: the events in between are missing, and a decision of the "
                    "period may be among them"
                )
            if seen.at < previous.at:
                self._problem(f"{name} is recorded before the version before it")
            if self.closed:
                self._problem(
                    f"{name} follows the upper boundary: recorded outside the bundle's period, "
                    "it is not one of its two boundaries"
                )
        self.last = seen
        before = self.since is not None and seen.at < self.since
        after = self.until is not None and seen.at >= self.until
        if before and previous is not None:
            self._problem(
                f"{name} is recorded outside the bundle's period (before it) but is not its "
                "first event"
            )
        if after:
            self.closed = True
        return before or after

    def _boundary_decision(self, envelope: Envelope, name: str) -> None:
        try:
            payload = json.loads(envelope.payload)
            tenant, decision_id = payload["tenant"], payload["decision_id"]
        except (ValueError, KeyError, TypeError) as exc:
            self._problem(f"{name}: not a decision payload ({exc!r})")
            return
        if tenant != self.tenant or decision_id != str(envelope.event_id):
            self._problem(f"{name}: its payload names tenant {tenant!r}, decision {decision_id}")

    def outside(self, envelope: Envelope, fingerprint: str) -> None:
        """A decision of the data that is not in the tenant's sequence: recorded by release
        0.1.0 in its policy's stream (not covered by the proof), or misplaced."""
        if envelope.stream_id != fingerprint:
            self._problem(
                f"decision {envelope.event_id} is in stream {envelope.stream_id!r}: neither its "
                f"tenant's sequence {self.stream!r} nor (release 0.1.0) its policy's"
            )
        self.unsequenced += 1

    def finish(self, problem: Callable[[str], None], note: Callable[[str], None]) -> Any:
        """Report what is proven (problems and notes go to the callbacks); returns the
        statement for the verification's JSON, or None when completeness is not proven."""
        first, last, claim = self.first, self.last, self.claim
        if first is None or last is None:
            if claim is None:
                note(_NOT_PROVEN)
            else:
                problem(
                    f"completeness: the manifest claims a proof, but no event of {self.stream} "
                    "is proven in the bundle"
                )
            for text in self.problems:
                problem(text)
            return None
        if first.version > 1 and not (self.since is not None and first.at < self.since):
            self._problem(
                f"{self.stream} version {first.version - 1}, the tenant's event before the "
                "period, is not in the bundle: decisions recorded in the period before version "
                f"{first.version} may be missing"
            )
        ends = self.until is not None and last.at >= self.until
        if last.type != SEALED and not ends:
            self._problem(
                f"nothing proves that {self.stream} version {last.version} is the tenant's last "
                "decision of the period: the next event of the sequence (a later decision or a "
                "DecisionsSealed) is not in the bundle"
            )
        lower = self.since is not None and first.at < self.since
        statement = {
            "format": COMPLETENESS_FORMAT,
            "stream": self.stream,
            "first_version": first.version,
            "last_version": last.version,
            "proven_until": iso_us(self.until if ends else last.at),
            "unsequenced_before": None if lower or first.version > 1 else iso_us(first.at),
        }
        if claim is None:
            self._problem(
                f"the bundle holds events of {self.stream} but its manifest has no completeness "
                "member"
            )
        elif claim != statement:
            differ = (
                sorted(
                    k for k in statement.keys() | claim.keys() if claim.get(k) != statement.get(k)
                )
                if isinstance(claim, dict)
                else ["completeness"]
            )
            self._problem(
                f"the manifest's {', '.join(differ)} is not what the proven events show "
                f"({json.dumps({k: statement.get(k) for k in differ})})"
            )
        for text in self.problems:
            problem(text)
        if self.problems:
            return None
        if not ends:
            note(
                f"complete up to {statement['proven_until']}, when the tenant's sequence was "
                "sealed for this proof: decisions recorded later are not covered"
            )
        if statement["unsequenced_before"] is not None:
            note(
                f"decisions of {self.tenant!r} recorded before {statement['unsequenced_before']} "
                "(the start of its sequence) could only be unsequenced ones of release 0.1.0, "
                "which the proof does not cover"
            )
        if self.unsequenced:
            note(
                f"{self.unsequenced} decisions were recorded without a sequence (release 0.1.0): "
                "the proof does not cover them"
            )
        return statement
