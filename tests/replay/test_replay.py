"""Replay on both backends: an untouched ledger reproduces exactly, a forged decision is named
with its first differing field, a one-price change moves exactly the decisions a brute-force
evaluation says it should, filters select what they say, every run is a ReplayRun event."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest

from ledger import canonical_json
from router.core import Catalog, Policy, Trace, decide
from router.services.decisions import DecisionService
from router.services.replay import (
    REPLAY_RUN,
    DecisionFilter,
    ReplayError,
    ReplayService,
    summary_digest,
)
from tests.ledger._backends import Backend as RawBackend
from tests.replay.support import POLICIES, Recorded, brute_force_selected, record_ledger
from tests.support.service_backends import Backend


async def _recorded(backend: Backend) -> Recorded:
    async with backend.service() as service:
        return await record_ledger(service)


def _raw(backend: Backend) -> RawBackend:
    return RawBackend(backend.name, backend.url, backend.search_path, backend.home)


async def test_untouched_ledger_replays_with_zero_mismatches(backend: Backend) -> None:
    recorded = await _recorded(backend)
    rows: list[dict[str, Any]] = []
    async with backend.service() as service:  # a fresh connection, like another process
        report = await ReplayService(service).original(sink=rows.extend)
        assert report.decisions == len(recorded.ids) == 48
        assert report.mismatches == 0, report.examples
        assert report.ok
        assert [r["decision_id"] for r in rows] == [str(d) for d in recorded.ids]
        assert all(r["ok"] for r in rows)
        assert {r["tenant"] for r in rows} == {"acme", "globex", "initech"}
        # decisions share groups: far fewer evaluations than decisions
        assert report.evaluations < report.decisions
        run = await service.ledger.get(report.position)  # type: ignore[arg-type]
    assert run.type == REPLAY_RUN
    payload = run.payload_json()
    assert payload["run_id"] == report.run_id
    assert payload["mode"] == "original"
    assert payload["decisions"] == 48
    assert payload["mismatches"] == 0
    assert payload["summary_digest"] == report.summary_digest == summary_digest(report)
    assert payload["parameters"]["filter"]["tenant"] is None


async def _forge(backend: Backend, *forgeries: tuple[uuid.UUID, Any]) -> None:
    """Rewrite decisions' payloads in place, with the immutability triggers dropped by hand."""
    raw = _raw(backend)
    await raw.drop_guards()
    for decision_id, change in forgeries:
        await _rewrite(raw, decision_id, change)


async def _rewrite(raw: RawBackend, decision_id: uuid.UUID, change: Any) -> None:
    (row,) = await raw.sql(
        "SELECT position, payload FROM ledger_events WHERE event_id = :id",
        {"id": decision_id.bytes},
    )
    payload = json.loads(bytes(row[1]))
    change(payload)
    await raw.sql(
        "UPDATE ledger_events SET payload = :p WHERE position = :pos",
        {"p": canonical_json(payload), "pos": row[0]},
    )


def _runner_up(payload: dict[str, Any]) -> None:
    payload["selected"] = {"index": payload["plan"][1], "id": "forged"}


async def test_forged_decision_is_reported_with_its_id_and_field(backend: Backend) -> None:
    recorded = await _recorded(backend)
    victim = next(d for d in recorded.ids if recorded.policy_of[d] is recorded.policies[0])
    other = next(d for d in recorded.ids if recorded.policy_of[d] is recorded.policies[1])

    def plan(payload: dict[str, Any]) -> None:
        payload["plan"] = list(reversed(payload["plan"]))

    await _forge(backend, (victim, _runner_up), (other, plan))
    async with backend.service() as service:
        report = await ReplayService(service).original()
    assert report.mismatches == 2
    assert not report.ok
    found = {ex["decision_id"]: ex for ex in report.examples}
    assert found[str(victim)]["field"] == "selected"
    assert found[str(victim)]["recorded"].startswith("forged")
    assert found[str(other)]["field"] == "plan"
    assert dict(report.mismatch_fields) == {"selected": 1, "plan": 1}


async def test_forged_decision_id_and_foreign_policy_are_mismatches(backend: Backend) -> None:
    recorded = await _recorded(backend)
    a, b = recorded.ids[0], recorded.ids[1]

    def other_id(payload: dict[str, Any]) -> None:
        payload["decision_id"] = str(uuid.UUID(int=7))

    def other_digest(payload: dict[str, Any]) -> None:
        payload["policy"]["digest"] = "0" * 64

    await _forge(backend, (a, other_id), (b, other_digest))
    async with backend.service() as service:
        report = await ReplayService(service).original(record=False)
    fields = {ex["decision_id"]: ex["field"] for ex in report.examples}
    assert fields == {str(a): "decision_id", str(b): "policy"}
    assert report.position is None


async def test_unreadable_payloads_and_unknown_catalogs_are_mismatches(backend: Backend) -> None:
    recorded = await _recorded(backend)
    a, b, c = recorded.ids[0], recorded.ids[1], recorded.ids[2]

    def not_a_decision(payload: dict[str, Any]) -> None:
        payload.clear()
        payload["decision_id"] = str(a)  # readable id, nothing else: no decision record

    def unknown_catalog(payload: dict[str, Any]) -> None:
        payload["catalog_version"] = "f" * 64

    def odd_tenant(payload: dict[str, Any]) -> None:
        payload["tenant"] = 'acme "west"'  # a quote: the payload takes the slow path

    await _forge(backend, (a, not_a_decision), (b, unknown_catalog), (c, odd_tenant))
    async with backend.service() as service:
        rows: list[dict[str, Any]] = []
        report = await ReplayService(service).original(record=False, sink=rows.extend)
    fields = {ex["decision_id"]: ex["field"] for ex in report.examples}
    assert fields == {str(a): "payload", str(b): "catalog_version", str(c): "tenant"}
    assert report.mismatches == 3
    # The slow path verifies what the fast path would: the tenant is not part of the outcome,
    # but a decision is recorded in its tenant's sequence, which another tenant contradicts.
    (odd,) = [r for r in rows if r["decision_id"] == str(c)]
    assert not odd["ok"]
    assert odd["tenant"] == 'acme "west"'
    assert odd["replayed"].startswith("recorded in stream decisions/")


async def test_a_member_named_twice_is_read_as_the_decoder_reads_it(backend: Backend) -> None:
    """A payload naming `plan` twice: the decoder reads the last one, so must replay (a reader
    taking the first would see the untouched plan and let the forgery pass)."""
    recorded = await _recorded(backend)
    victim = recorded.ids[0]
    raw = _raw(backend)
    await raw.drop_guards()
    (row,) = await raw.sql(
        "SELECT position, payload FROM ledger_events WHERE event_id = :id",
        {"id": victim.bytes},
    )
    payload = bytes(row[1])
    plan = json.loads(payload)["plan"]
    twice = payload[:-1] + b',"plan":' + json.dumps([*plan[::-1], 0]).encode() + b"}"
    await raw.sql(
        "UPDATE ledger_events SET payload = :p WHERE position = :pos", {"p": twice, "pos": row[0]}
    )
    async with backend.service() as service:
        report = await ReplayService(service).original(record=False)
    assert report.mismatches == 1
    assert [(ex["decision_id"], ex["field"]) for ex in report.examples] == [(str(victim), "plan")]


async def test_one_price_change_moves_exactly_the_brute_force_decisions(backend: Backend) -> None:
    recorded = await _recorded(backend)
    doc = recorded.catalog.to_json()
    # Make the most selected entry expensive: some decisions move, the others must not.
    counts: dict[str, int] = {}
    for chosen in recorded.selected.values():
        if chosen is not None:
            counts[chosen] = counts.get(chosen, 0) + 1
    winner = max(sorted(counts), key=lambda k: counts[k])
    for entry in doc["entries"]:
        if entry["id"] == winner:
            entry["price_in"] = round(entry["price_in"] * 20 + 1, 3)
    target = Catalog.from_json(doc)
    async with backend.service() as service:
        await service.publish_catalog(target)
        rows: list[dict[str, Any]] = []
        report = await ReplayService(service).against(
            await service.catalog("latest"), sink=rows.extend
        )
    assert report.errors == 0
    assert report.decisions == 48
    by_id = {r["decision_id"]: r for r in rows}
    moved_expected = set()
    for decision_id in recorded.ids:
        index = recorded.policies.index(recorded.policy_of[decision_id])
        before = brute_force_selected(
            recorded.catalog.to_json(), POLICIES[index], recorded.features_of[decision_id]
        )
        after = brute_force_selected(doc, POLICIES[index], recorded.features_of[decision_id])
        assert before == recorded.selected[decision_id]
        row = by_id[str(decision_id)]
        assert row["previous"] == before, decision_id
        assert row["selected"] == after, decision_id
        assert row["no_entry_passes"] == (after is None)
        if before != after:
            moved_expected.add(str(decision_id))
    moved = {r["decision_id"] for r in rows if r["changed"]}
    assert moved, "the change must move some decisions"
    assert moved == moved_expected
    assert report.changed == len(moved)
    assert sum(a.changed for a in report.by_tenant.values()) == len(moved)
    assert sum(a.changed for a in report.by_policy.values()) == len(moved)


async def test_a_stricter_policy_names_the_rule_that_removes_the_previous_winner(
    backend: Backend,
) -> None:
    recorded = await _recorded(backend)
    high = {"id": "quality.high", "when": ["cmp", "bench", "ge", 0.9]}
    stricter = {**POLICIES[0], "rules": [*POLICIES[0]["rules"], high]}

    policy = Policy.from_json(stricter, recorded.catalog.schema)
    fingerprint = recorded.policies[0].fingerprint
    async with backend.service() as service:
        report = await ReplayService(service).against(
            recorded.catalog, DecisionFilter(fingerprint=fingerprint), policy=policy
        )
    assert report.decisions == 12
    assert set(report.by_policy) == {fingerprint}
    impact = report.by_rule["quality.high"]
    assert impact.newly_removed, "the new rule removes entries that passed before"
    assert impact.decisions == report.previous_ineligible > 0
    doc = report.to_json()
    assert doc["by_rule"]["quality.high"]["newly_removed_count"] == len(impact.newly_removed)


async def test_rule_impact_names_exactly_the_entries_each_rule_removes_anew_or_no_longer(
    backend: Backend,
) -> None:
    recorded = await _recorded(backend)
    doc = recorded.catalog.to_json()
    # Entries leave the catalog (among them some that rules removed), others change region,
    # quality or no_log, so every rule gains and loses entries.
    doc["entries"] = [e for i, e in enumerate(doc["entries"]) if i % 7 != 3]
    for i, entry in enumerate(doc["entries"]):
        if i % 5 == 0:
            entry["region"] = "eu" if entry["region"] != "eu" else "us"
        if i % 4 == 1:
            entry["bench"] = 0.93 if entry.get("bench", 0) < 0.5 else 0.3
            entry["no_log"] = not entry["no_log"]
    target = Catalog.from_json(doc)
    async with backend.service() as service:
        report = await ReplayService(service).against(target)

    newly: dict[str, set[str]] = {}
    no_longer: dict[str, set[str]] = {}
    for decision_id in recorded.ids:
        policy = recorded.policy_of[decision_id]
        features = recorded.features_of[decision_id]
        before = decide(policy, recorded.catalog, features)
        after = decide(policy, target, features)
        for rule in after.rule_ids:
            failing_before = _failing(before, rule)
            failing_after = _failing(after, rule)
            newly.setdefault(rule, set()).update(failing_after - failing_before)
            no_longer.setdefault(rule, set()).update(failing_before - failing_after)
    expected = {rule for rule in newly if newly[rule] or no_longer[rule]}
    assert set(report.by_rule) >= expected
    gone = {e.id for e in recorded.catalog.entries} - {e.id for e in target.entries}
    assert any(no_longer[rule] & gone for rule in expected), "some removed entry left"
    for rule in expected:
        impact = report.by_rule[rule]
        assert impact.newly_removed == newly[rule], rule
        assert impact.no_longer_removed == no_longer[rule], rule


def _failing(trace: Trace, rule: str) -> set[str]:
    """The ids of the entries `rule` removes in `trace` (its bitmap read bit by bit)."""
    bitmap = trace.failures[trace.rule_ids.index(rule)]
    return {
        entry.id
        for i, entry in enumerate(trace.catalog.entries)
        if bitmap[i // 8] >> (7 - i % 8) & 1
    }


async def test_filters_select_by_tenant_fingerprint_ids_and_time(backend: Backend) -> None:
    recorded = await _recorded(backend)
    async with backend.service() as service:
        replay = ReplayService(service)

        async def ids(flt: DecisionFilter) -> list[str]:
            rows: list[dict[str, Any]] = []
            await replay.original(flt, sink=rows.extend, record=False)
            return [r["decision_id"] for r in rows]

        acme = [str(d) for d in recorded.ids if recorded.tenants[d] == "acme"]
        assert await ids(DecisionFilter(tenant="acme")) == acme
        fp = recorded.policies[1].fingerprint
        assert await ids(DecisionFilter(fingerprint=fp)) == [
            str(d) for d in recorded.ids if recorded.policy_of[d] is recorded.policies[1]
        ]
        chosen = (recorded.ids[5], recorded.ids[9])
        assert await ids(DecisionFilter(decision_ids=chosen)) == [str(d) for d in chosen]
        assert await ids(DecisionFilter(tenant="nobody")) == []
        cut = (await service.decision(recorded.ids[20])).recorded_at
        after = await ids(DecisionFilter(since=cut))
        before = await ids(DecisionFilter(until=cut))
        assert sorted(before + after) == sorted(str(d) for d in recorded.ids)
        assert str(recorded.ids[20]) in after
        assert str(recorded.ids[20]) not in before
        assert await ids(DecisionFilter(since=cut, until=cut + timedelta(microseconds=1)))
        with pytest.raises(ReplayError, match="not recorded"):
            await replay.original(DecisionFilter(decision_ids=(uuid.UUID(int=1),)))
        with pytest.raises(ReplayError, match="is not before"):
            DecisionFilter(since=cut, until=cut)


async def test_group_cache_smaller_than_the_groups_gives_the_same_report(
    backend: Backend,
) -> None:
    await _recorded(backend)
    async with backend.service() as service:
        big = await ReplayService(service).original(record=False)
        small = await ReplayService(
            DecisionService(service.ledger), page=7, group_cache=2
        ).original(record=False)
    assert small.decisions == big.decisions
    assert small.mismatches == 0
    assert small.evaluations >= big.evaluations


async def test_pages_parsed_ahead_give_the_rows_of_one_page_and_stop_with_the_replay(
    backend: Backend,
) -> None:
    recorded = await _recorded(backend)

    class StopError(Exception):
        pass

    def refuse(rows: list[dict[str, Any]]) -> None:
        raise StopError

    one: list[dict[str, Any]] = []
    paged: list[dict[str, Any]] = []
    async with backend.service() as service:
        await ReplayService(service).original(record=False, sink=one.extend)
        replay = ReplayService(DecisionService(service.ledger), page=5)
        await replay.original(record=False, sink=paged.extend)
        with pytest.raises(StopError):  # left at its first page, with the next one being parsed
            await replay.original(record=False, sink=refuse)
        assert not [t for t in threading.enumerate() if t.name.startswith("replay-parser")]
        again = await replay.original(record=False)
    assert len(one) == len(recorded.ids)
    assert paged == one
    assert again.decisions == len(recorded.ids)
    assert again.mismatches == 0
