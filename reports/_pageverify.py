"""`verify_page`: check that a tenant's page of `GET /x/decisions` holds every decision of the
tenant in its range (docs/http.md, "Completeness of a page"), from the page and the answer of
`GET /x/sequences/{tenant}` for the versions it names — no trust in the server beyond the key.

The events of the sequence answer are checked like a bundle's (leaf and chain hash recomputed
from their bytes, inclusion proof to the root of the checkpoint signed by the key). Then the
versions the page claims must all be proven, its neighbours must be the proven events of their
versions, and every version strictly between them must be a decision of the page (same id,
position and sequence number) or a seal the page lists."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger import Checkpoint, Envelope, LedgerError, parse_verifier_key
from reports._errors import ReportsError
from reports._events import open_bundle_checkpoint, read_events
from reports._sequence import SEALED
from reports._witnesses import key_argument
from router.services.decisions import DECISION_MADE, tenant_stream

__all__ = ["PageVerification", "verify_page"]

_EVENTS = "sequence/events"


@dataclass
class PageVerification:
    """The outcome of `verify_page`: `ok` when `problems` is empty."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tree_size: int | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.problems


def _same(claim: Any, event: Envelope) -> bool:
    return isinstance(claim, dict) and claim == {
        "version": event.stream_version,
        "position": event.position,
        "event_id": str(event.event_id),
        "type": event.type,
    }


def _proven(
    sequence: Mapping[str, Any], key: str, result: PageVerification
) -> dict[int, Envelope] | None:
    """The sequence answer's events by version, once the checkpoint and every proof hold."""
    try:
        verifier = parse_verifier_key(key_argument(key, "--key", "a verifier key"))
    except LedgerError as exc:
        raise ReportsError(f"key: {exc}") from None
    note = sequence.get("checkpoint")
    checkpoint: Checkpoint | None = None
    if isinstance(note, str):
        checkpoint = open_bundle_checkpoint(
            "sequence/checkpoint", note.encode("utf-8"), verifier, result.problems.append
        )
    else:
        result.problems.append("sequence/checkpoint: expected a signed note")
    lines = sequence.get("events")
    if checkpoint is None or not isinstance(lines, list):
        if not isinstance(lines, list):
            result.problems.append(f"{_EVENTS}: expected a list of event lines")
        return None
    result.tree_size = checkpoint.size
    raw = [json.dumps(line, ensure_ascii=False).encode("utf-8") for line in lines]
    events = list(read_events(_EVENTS, raw, checkpoint, result.problems.append))
    if result.problems:
        return None
    return {e.stream_version: e for e in events}


def verify_page(
    page: Mapping[str, Any], sequence: Mapping[str, Any], key: str, *, cursor: int | None
) -> PageVerification:
    """Check `page` (a `GET /x/decisions` answer for one tenant, asked with `cursor`: None for
    the first page) with `sequence` (the answer of its `completeness.proofs` path) against the
    ledger's verifier key `key`."""
    result = PageVerification()
    problem = result.problems.append
    claim = page.get("completeness")
    if not isinstance(claim, dict):
        problem("completeness: the page carries no completeness member (not one tenant's page)")
        return result
    events = _proven(sequence, key, result)
    if events is None:
        return result
    stream, after = str(claim.get("stream")), claim.get("after_position")
    first, last = claim.get("first_version"), claim.get("last_version")
    if not isinstance(after, int) or not isinstance(first, int) or not isinstance(last, int):
        problem("completeness: after_position, first_version and last_version must be integers")
        return result
    if after != (-1 if cursor is None else cursor):
        problem(f"completeness: the page was asked after {cursor}, its proof is after {after}")
    for version in range(first, last + 1):
        found = events.get(version)
        if found is None or found.stream_id != stream:
            problem(f"completeness: version {version} of {stream} is not among the proven events")
            return result
    lower, upper = claim.get("lower"), claim.get("upper")
    low = 0 if lower is None else first
    high = last + 1 if upper is None else last
    if lower is None and first != 1:
        problem(f"completeness: no lower neighbour, but the proof starts at version {first}")
    if lower is not None and not (_same(lower, events[first]) and events[first].position <= after):
        problem(
            f"completeness: the lower neighbour is not {stream} version {first} at or before "
            f"the cursor {after}"
        )
    if upper is not None and not (_same(upper, events[last]) and events[last].position > after):
        problem(f"completeness: the upper neighbour is not {stream} version {last}")
    rows = [d for d in page.get("data", []) if isinstance(d, dict)]
    numbered = {d.get("sequence"): d for d in rows if d.get("sequence") is not None}
    seals = {s.get("version"): s for s in claim.get("seals", []) if isinstance(s, dict)}
    for version in range(low + 1, high):
        event = events[version]
        row = numbered.pop(version, None)
        if event.type == DECISION_MADE:
            if row is None or (row.get("decision_id"), row.get("position")) != (
                str(event.event_id),
                event.position,
            ):
                problem(
                    f"completeness: decision {event.event_id} ({stream} version {version}, "
                    f"position {event.position}) is between the page's neighbours but not in "
                    "the page"
                )
        elif event.type != SEALED or not _same(seals.get(version), event):
            problem(f"completeness: {stream} version {version} ({event.type}) is not listed")
        elif row is not None:
            problem(f"completeness: {stream} version {version} is a seal, not a decision")
    for claimed, row in numbered.items():
        problem(
            f"completeness: decision {row.get('decision_id')} of the page claims {stream} "
            f"version {claimed}, outside the proven versions {low + 1}..{high - 1}"
        )
    for row in rows:
        if tenant_stream(str(row.get("tenant"))) != stream:
            problem(f"completeness: decision {row.get('decision_id')} is not of {stream}")
        if not isinstance(row.get("position"), int) or row["position"] <= after:
            problem(f"completeness: decision {row.get('decision_id')} is not after the cursor")
    if page.get("next_cursor") is None and upper is not None and upper.get("type") != SEALED:
        problem(
            f"completeness: the page says it is the last, but {stream} goes on with decision "
            f"{upper.get('event_id')}"
        )
    if upper is None and not result.problems:
        result.notes.append(
            f"nothing proves that no decision followed the page's last one: {stream} ended "
            "there when the page was read (a seal proves it: `bundle create`, `export parquet`)"
        )
    if claim.get("unsequenced"):
        result.notes.append(
            f"{claim['unsequenced']} decisions of the page have no sequence number (release "
            "0.1.0): the proof does not cover them"
        )
    return result
