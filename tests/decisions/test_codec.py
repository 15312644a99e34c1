"""The compact outcome encoding: lossless on random policies × random catalogs, and every digest
it carries is checked on decode."""

from __future__ import annotations

import base64
import copy
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import uuid7
from router.core import Catalog, Policy, RequestFeatures, Trace, decide
from router.services.catalogs import bundled_catalog, bundled_policy_document
from router.services.decisions import (
    RecordMismatchError,
    decode_decision,
    decode_failures,
    encode_outcome,
    has_no_log_rule,
    outcome_digest,
    rebuild_trace,
)
from router.services.decisions._events import decision_event
from tests.policy.test_properties import catalogs, entries, policies

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def record(trace: Trace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The DecisionMade and OutcomeRecorded payloads of a live trace."""
    outcome = encode_outcome(trace)
    event = decision_event(
        decision_id=uuid7(),
        tenant="t",
        preview=False,
        trace=trace,
        outcome=outcome_digest(outcome),
        features=trace.features,
        digest=None,
        body=None,
    )
    return dict(event.payload), outcome


def assert_round_trip(trace: Trace) -> None:
    decision, outcome = record(trace)
    rebuilt = rebuild_trace(decode_decision(decision), outcome, trace.policy, trace.catalog)
    assert rebuilt.to_json() == trace.to_json()
    fields = ("evaluator_version", "features", "tokens", "rule_ids", "failures", "ranked", "plan")
    assert [getattr(rebuilt, f) for f in fields] == [getattr(trace, f) for f in fields]


@st.composite
def big_catalogs(draw: st.DrawFn) -> Catalog:
    """Catalogs of up to 60 entries (bitmaps across several bytes, ties on every key)."""
    size = draw(st.integers(1, 60))
    return Catalog.from_json(
        {"name": "random", "entries": [draw(entries(f"e{i:03d}")) for i in range(size)]}
    )


@SETTINGS
@given(policies(), st.one_of(catalogs(), big_catalogs()))
def test_decode_of_encode_rebuilds_the_live_trace(
    document: dict[str, Any], catalog: Catalog
) -> None:
    assert_round_trip(decide(Policy.from_json(document), catalog))


@SETTINGS
@given(policies(), big_catalogs(), st.integers(0, 9000), st.integers(0, 9000))
def test_round_trip_with_tokens_from_the_request(
    document: dict[str, Any], catalog: Catalog, tokens_in: int, tokens_out: int
) -> None:
    document = {k: v for k, v in document.items() if k != "tokens"}
    policy = Policy.from_json(document)
    assert_round_trip(decide(policy, catalog, RequestFeatures(tokens_in, tokens_out)))


def example() -> Trace:
    catalog = bundled_catalog()
    policy = Policy.from_json(bundled_policy_document("enterprise-eu"), catalog.schema)
    return decide(policy, catalog, RequestFeatures(100, 50))


def test_a_forged_rank_order_digest_is_refused() -> None:
    trace = example()
    decision, outcome = record(trace)
    decision["rank"]["order_sha256"] = "0" * 64
    with pytest.raises(RecordMismatchError, match="rank order does not match"):
        rebuild_trace(decode_decision(decision), outcome, trace.policy, trace.catalog)


def test_a_changed_outcome_no_longer_matches_its_digest() -> None:
    trace = example()
    decision, outcome = record(trace)
    forged = copy.deepcopy(outcome)
    raw = bytearray(zlib.decompress(base64.b64decode(forged["masks"])))
    raw[0] ^= 1
    forged["masks"] = base64.b64encode(zlib.compress(bytes(raw))).decode()
    with pytest.raises(RecordMismatchError, match="does not hash to the digest"):
        rebuild_trace(decode_decision(decision), forged, trace.policy, trace.catalog)


def test_a_forged_plan_or_passing_count_is_refused() -> None:
    trace = example()
    decision, outcome = record(trace)
    shortened = {**decision, "plan": decision["plan"][:1]}
    with pytest.raises(RecordMismatchError, match="plan"):
        rebuild_trace(decode_decision(shortened), outcome, trace.policy, trace.catalog)
    miscounted = {**decision, "filter": {**decision["filter"], "passing": 1}}
    with pytest.raises(RecordMismatchError, match="entries pass"):
        rebuild_trace(decode_decision(miscounted), outcome, trace.policy, trace.catalog)


def test_another_policy_or_catalog_is_refused() -> None:
    trace = example()
    decision, outcome = record(trace)
    other = Policy.from_json(bundled_policy_document("vip"), trace.catalog.schema)
    with pytest.raises(RecordMismatchError, match="policy digest"):
        rebuild_trace(decode_decision(decision), outcome, other, trace.catalog)


def test_masks_past_the_last_entry_or_of_the_wrong_size_are_refused() -> None:
    outcome = {
        "schema": "unhardcoded.outcome/1",
        "catalog_version": "x",
        "entries": 3,
        "rules": ["a"],
        "encoding": "rule-bitmaps-msb+zlib/1",
        "masks": base64.b64encode(zlib.compress(bytes([0b1001]))).decode(),
    }
    with pytest.raises(RecordMismatchError, match="past the last entry"):
        decode_failures(outcome)
    outcome["masks"] = base64.b64encode(zlib.compress(bytes(2))).decode()
    with pytest.raises(RecordMismatchError, match="expected 1 rules"):
        decode_failures(outcome)
    outcome["masks"] = "not base64!"
    with pytest.raises(RecordMismatchError, match="do not decode"):
        decode_failures(outcome)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (["is", "no_log"], True),
        (["all", ["is", "no_log"], ["eq", "region", "eu"]], True),
        (["all", ["eq", "region", "eu"], ["all", ["is", "no_log"], ["is", "no_log"]]], True),
        (["any", ["is", "no_log"], ["eq", "region", "eu"]], False),
        (["not", ["is", "no_log"]], False),
        (["eq", "region", "eu"], False),
    ],
)
def test_what_counts_as_a_no_log_rule(when: list[Any], expected: bool) -> None:
    policy = Policy.from_json(
        {"v": "sigma-pol/v1", "rules": [{"id": "r", "when": when}]}, bundled_catalog().schema
    )
    assert has_no_log_rule(policy) is expected


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("tenant"),
        lambda d: d.update(policy="fp"),
        lambda d: d.update(features={"tokens_in": -1, "tokens_out": 0}),
        lambda d: d.update(tokens={"in": 1}),
        lambda d: d.update(plan=None),
    ],
)
def test_a_malformed_payload_is_refused_by_the_decoder(change: Any) -> None:
    decision, _ = record(example())
    change(decision)
    with pytest.raises(RecordMismatchError, match="not a well-formed decision"):
        decode_decision(decision)


def test_the_decoder_reads_the_canonical_bytes_as_the_object() -> None:
    from ledger import canonical_json

    decision, _ = record(example())
    assert decode_decision(canonical_json(decision)) == decode_decision(decision)
