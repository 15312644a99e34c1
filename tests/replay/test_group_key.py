"""The group key DuckDB computes for each DecisionMade payload: the per-decision fields (id,
tenant, preview, request digest) are not in it, every field the outcome depends on or claims is,
as JSON text (so a number and a string differ), and whether preview and request digest are
present (decoding needs them), and payloads DuckDB cannot read the fast way
(invalid JSON, not an object, a decision id or tenant that is not a string) are `slow`: the
service reads those one by one."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pyarrow as pa

from ledger import EVENT_BATCH_SCHEMA, EventRecord, canonical_json
from router.services.replay import DecisionFilter
from router.services.replay._columnar import Columnar
from router.services.replay._rows import ORIGINAL_RESULTS

PAYLOAD: dict[str, Any] = {
    "schema": "unhardcoded.decision/1",
    "decision_id": "01a2150d-e605-7d63-8be6-5a660699e8f4",
    "tenant": "acme",
    "preview": False,
    "request_digest": "ab" * 32,
    "features": {"tokens_in": 10, "tokens_out": 20},
    "policy": {"fingerprint": "1-2 (sigma-pol/v1)", "digest": "cd" * 32},
    "catalog_version": "ef" * 32,
    "evaluator_version": "unhardcoded-eval/1",
    "tokens": {"in": 10, "out": 20},
    "filter": {"outcome": "12" * 32, "passing": 3},
    "rank": {"order_sha256": "34" * 32},
    "selected": {"index": 2, "id": "a/b@eu"},
    "plan": [2, 0],
}


def _with(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(PAYLOAD)
    payload.update(changes)
    return payload


def _groups(*payloads: dict[str, Any] | bytes) -> tuple[list[int], list[int]]:
    """Load the payloads as one page: (first position of each group, positions read slowly)."""
    records = [
        EventRecord(
            i,
            uuid.UUID(int=i).bytes,
            "DecisionMade",
            "1-2 (sigma-pol/v1)",
            1_000_000 + i,
            canonical_json(p) if isinstance(p, dict) else p,
            i + 1,
        )
        for i, p in enumerate(payloads)
    ]
    batch = pa.RecordBatch.from_pylist([r._asdict() for r in records], schema=EVENT_BATCH_SCHEMA)
    cols = Columnar(ORIGINAL_RESULTS, DecisionFilter(), original=False)
    try:
        cols.load(cols.parse(batch))
        slow = [event.position for event in cols.slow()]
        position = {record.payload: record.position for record in reversed(records)}
        return [position[payload] for _, _, payload in cols.new_groups()], slow
    finally:
        cols.close()


def test_per_decision_fields_are_not_in_the_key() -> None:
    other = _with(
        decision_id="01a2150d-e605-7d63-8be6-5a660699e8f5",
        tenant="globex",
        preview=True,
        request_digest=None,
    )
    assert _groups(PAYLOAD, other) == ([0], [])


def test_outcome_relevant_fields_are_in_the_key() -> None:
    changed = [
        _with(selected={"index": 0, "id": "a/a@eu"}),
        _with(plan=[2]),
        _with(features={"tokens_in": 11, "tokens_out": 20}),
        _with(filter={"outcome": "12" * 32, "passing": 4}),
        _with(filter={"outcome": "12" * 32, "passing": "3"}),  # a string, not the number
        _with(tokens=None),
        _with(evaluator_version="unhardcoded-eval/2"),
        _with(policy={"fingerprint": "1-2 (sigma-pol/v1)", "digest": "00" * 32}),
        _with(catalog_version="00" * 32),
        _with(rank={"order_sha256": "00" * 32}),
    ]
    missing = copy.deepcopy(PAYLOAD)
    del missing["request_digest"]  # decoding needs it present
    no_features = copy.deepcopy(PAYLOAD)
    del no_features["features"]  # not a decision; `"features": null` is one
    first, slow = _groups(PAYLOAD, *changed, missing, _with(features=None), no_features)
    assert first == list(range(len(changed) + 4))
    assert slow == []


def test_unreadable_payloads_and_odd_ids_or_tenants_are_read_one_by_one() -> None:
    raw = canonical_json(PAYLOAD)
    first, slow = _groups(
        PAYLOAD,
        b"{not json",
        b"[1, 2]",
        b"\xff\xfe not utf-8",
        _with(decision_id=7),
        _with(tenant=None),
        raw.replace(b'"tenant":"acme"', b'"tenant":"x\\",\\"selected\\":1"'),
    )
    assert slow == [1, 2, 3, 4, 5]
    assert first == [0]  # position 6 has an odd tenant, read fast: the same group as 0


def test_the_idempotency_key_digest_is_per_decision() -> None:
    assert _groups(PAYLOAD, _with(idempotency_key_sha256="9f" * 32)) == ([0], [])


def test_a_member_named_twice_is_read_one_by_one() -> None:
    # DuckDB reads the first of two members with one name, Python's decoder the last.
    raw = canonical_json(PAYLOAD)
    assert _groups(PAYLOAD, raw[:-1] + b',"plan":[0]}', raw[:-1] + b',"schema":"x"}') == (
        [0],
        [1, 2],
    )
