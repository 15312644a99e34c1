"""`ReplayService`: stream the selected decisions page by page, evaluate each distinct group
once (`_groups`), join the results to the decisions in DuckDB (`_columnar`), report."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from ledger import EventRecord, NewEvent, uuid7
from router.core import Catalog, Policy
from router.services.decisions import DecisionService
from router.services.replay._columnar import Columnar
from router.services.replay._errors import ReplayError
from router.services.replay._groups import Groups, selected, text_or_none
from router.services.replay._report import EXAMPLES, ReplayReport, summary_digest
from router.services.replay._rows import (
    AGAINST_RESULTS,
    ORIGINAL_RESULTS,
    against_example,
    against_result,
    against_row,
    change_of,
    original_example,
    original_result,
)
from router.services.replay._scan import (
    DecisionFilter,
    count_decisions,
    last_position,
    missing_ids,
    payload_fingerprint,
    scan_batches,
)

__all__ = ["REPLAY_RUN", "REPLAY_SCHEMA", "ReplayService", "RowSink"]

REPLAY_RUN = "ReplayRun"
REPLAY_SCHEMA = "unhardcoded.replay/1"

RowSink = Callable[[list[dict[str, Any]]], None]
"""Receives the per-decision rows of each page (see `ReplayService` for their columns)."""
Progress = Callable[[int, int], None]


class _Original:
    """`--mode original`: each group verified; mismatches counted per field."""

    results = ORIGINAL_RESULTS
    original = True

    def __init__(self, groups: Groups, report: ReplayReport, sink: RowSink | None) -> None:
        self.groups, self.report, self.sink = groups, report, sink

    async def slow(self, gid: int, event: EventRecord) -> tuple[str | None, dict[str, Any]]:
        tenant, record, mismatch = await self.groups.verify_slow(event, self.report)
        return text_or_none(tenant), original_result(gid, record, mismatch)

    async def group(self, gid: int, home: str, payload: bytes) -> dict[str, Any]:
        record, mismatch = await self.groups.verify_group(home, payload, self.report)
        return original_result(gid, record, mismatch)

    def page(self, cols: Columnar) -> None:
        report = self.report
        for field, count in cols.mismatch_fields():
            report.mismatches += count
            report.mismatch_fields[field] += count
        room = EXAMPLES - len(report.examples)
        if room > 0 and report.mismatches > len(report.examples):
            report.examples.extend(map(original_example, cols.original_rows(True, room)))
        if self.sink is not None:
            rows = cols.original_rows(False, None)
            if rows:
                self.sink(rows)

    def end(self, cols: Columnar) -> None:
        pass


class _Against:
    """`--against`: each group compared with the target; changes tallied per tenant, policy
    and rule."""

    results = AGAINST_RESULTS
    original = False

    def __init__(
        self,
        groups: Groups,
        report: ReplayReport,
        sink: RowSink | None,
        target: Catalog,
        policy: Policy | None,
    ) -> None:
        self.groups, self.report, self.sink = groups, report, sink
        self.target, self.policy = target, policy
        self.seen_pairs: set[tuple[str, str, str]] = set()

    async def slow(self, gid: int, event: EventRecord) -> tuple[str | None, dict[str, Any]]:
        try:
            tenant = str(json.loads(event.payload)["tenant"])
        except (ValueError, KeyError, TypeError) as exc:
            return "", against_result(gid, None, None, f"unreadable payload: {exc!r}")
        return tenant, await self.group(gid, "", event.payload)

    async def group(self, gid: int, home: str, payload: bytes) -> dict[str, Any]:
        found = await self.groups.change_group(
            payload, self.target, self.policy, self.report, self.seen_pairs
        )
        return against_result(gid, *found)

    def page(self, cols: Columnar) -> None:
        report = self.report
        cols.count_page()
        errors, first = cols.errors_and_changes(EXAMPLES - len(report.examples))
        report.errors += errors
        report.examples.extend(map(against_example, first))
        if self.sink is not None:
            rows = [against_row(row, self.target.version) for row in cols.against_rows()]
            if rows:
                self.sink(rows)
        if len(self.seen_pairs) > 100_000:
            self.seen_pairs.clear()  # re-adding a pair's ids to the rule sets is idempotent

    def end(self, cols: Columnar) -> None:
        for group in cols.tally():
            self.report.add_change(
                group["tenant"], group["fingerprint"], change_of(group), group["n"]
            )


class ReplayService:
    """Replay recorded decisions (docs/replay.md).

    `original`: re-evaluate every selected decision with the policy and catalog version it
    recorded and check each recorded field (`_compare.FIELDS`) is reproduced. `against`:
    re-evaluate with another catalog (and/or policy) and report what changes.

    Decisions are read in pages by position; distinct groups (see `Recorded`) are evaluated
    once and kept in a bounded LRU of `group_cache` entries, so memory does not grow with the
    ledger. A sink receives per page one row per decision (`ORIGINAL_ROWS`, `AGAINST_ROWS`):

    - original: `decision_id, position, recorded_at_us, tenant, fingerprint, catalog_version,
      ok, field, recorded, replayed`;
    - against: `decision_id, position, recorded_at_us, tenant, fingerprint, catalog_version,
      target_version, previous, selected, changed, previous_cost, cost, cost_delta,
      previous_status, removed_by, no_entry_passes, error`.

    Every run is recorded as a `ReplayRun` event (stream `replay/{run id}`) with its parameters
    and the SHA-256 of its summary, unless `record=False`.
    """

    PAGE = 10_000
    """Decisions per page: DuckDB's cost per statement is shared by many rows, while the page,
    the next one being read and DuckDB's work on it keep the peak under 500 MB (20,000 cost
    40-70 MB more for no measurable speed)."""

    def __init__(
        self, decisions: DecisionService, *, page: int = PAGE, group_cache: int = 65_536
    ) -> None:
        self.decisions = decisions
        self.ledger = decisions.ledger
        self.page = page
        self._groups = Groups(decisions, group_cache=group_cache)

    async def original(
        self,
        flt: DecisionFilter | None = None,
        *,
        sink: RowSink | None = None,
        progress: Progress | None = None,
        record: bool = True,
    ) -> ReplayReport:
        """Re-evaluate each selected decision with its own policy and catalog version."""
        flt = flt or DecisionFilter()
        report, upto, total = await self._prepare("original", flt, {}, progress)
        await self._run(_Original(self._groups, report, sink), flt, upto, total, progress)
        return await self._finish(report, record)

    async def against(
        self,
        target: Catalog,
        flt: DecisionFilter | None = None,
        *,
        policy: Policy | None = None,
        sink: RowSink | None = None,
        progress: Progress | None = None,
        record: bool = True,
    ) -> ReplayReport:
        """Re-evaluate each selected decision against `target` (and `policy` instead of the
        recorded one, when given): what changes per decision, per tenant, policy and rule."""
        flt = flt or DecisionFilter()
        parameters = {
            "target_catalog": target.version,
            "policy": None if policy is None else policy.digest,
        }
        report, upto, total = await self._prepare("against", flt, parameters, progress)
        mode = _Against(self._groups, report, sink, target, policy)
        await self._run(mode, flt, upto, total, progress)
        return await self._finish(report, record)

    async def _prepare(
        self, mode: str, flt: DecisionFilter, parameters: dict[str, Any], progress: Progress | None
    ) -> tuple[ReplayReport, int, int]:
        if flt.decision_ids:
            absent = await missing_ids(self.ledger, flt.decision_ids)
            if absent:
                listed = ", ".join(str(d) for d in absent[:10])
                raise ReplayError(f"{len(absent)} decision id(s) are not recorded: {listed}")
        upto = await last_position(self.ledger)
        total = await count_decisions(self.ledger, flt, upto) if progress is not None else 0
        report = ReplayReport(str(uuid7()), mode, {**parameters, "filter": flt.to_json()})
        report.parameters["up_to_position"] = upto
        return report, upto, total

    async def _run(
        self,
        mode: _Original | _Against,
        flt: DecisionFilter,
        upto: int,
        total: int,
        progress: Progress | None,
    ) -> None:
        """Each page: parsed and joined to the known groups in DuckDB; the payloads DuckDB
        cannot read the usual way, then the new groups, evaluated in Python; the results
        stored and the page counted (`mode.page`)."""
        cols = Columnar(mode.results, flt, original=mode.original)
        pages = cols.pages(scan_batches(self.ledger, flt, upto, self.page))
        scanned = 0
        try:
            # Closed on any way out, so the page being parsed is done before the database
            # closes and the scan stops reading.
            async with contextlib.aclosing(pages):
                async for page in pages:
                    cols.load(page)
                    await self._settle(mode, cols, flt)
                    scanned += page.batch.num_rows
                    if progress is not None:
                        progress(scanned, total)
            mode.end(cols)
        finally:
            cols.close()

    @staticmethod
    async def _settle(mode: _Original | _Against, cols: Columnar, flt: DecisionFilter) -> None:
        """The page loaded in `cols`: its slow rows and new groups evaluated, the results
        stored, the page counted."""
        results: list[dict[str, Any]] = []
        slow: list[tuple[int, str | None, str, int | None]] = []
        for event in cols.slow():
            gid, tenant = None, None
            if selected(flt, event):
                gid = cols.allocate()
                tenant, result = await mode.slow(gid, event)
                results.append(result)
            slow.append((event.position, tenant, payload_fingerprint(event.payload), gid))
        new: list[tuple[str, int]] = []
        for key, home, payload in cols.new_groups():
            new.append((key, cols.allocate()))
            results.append(await mode.group(new[-1][1], home, payload))
        cols.commit(results, new, slow)
        mode.report.decisions += cols.size
        mode.page(cols)

    async def _finish(self, report: ReplayReport, record: bool) -> ReplayReport:
        report.summary_digest = summary_digest(report)
        if record:
            payload = {
                "schema": REPLAY_SCHEMA,
                "run_id": report.run_id,
                "mode": report.mode,
                "parameters": report.parameters,
                "decisions": report.decisions,
                "mismatches": report.mismatches,
                "changed": report.changed,
                "errors": report.errors,
                "summary_digest": report.summary_digest,
            }
            (envelope,) = await self.ledger.append(
                NewEvent(REPLAY_RUN, f"replay/{report.run_id}", payload),
                expected_version=0,
            )
            report.position = envelope.position
        return report
