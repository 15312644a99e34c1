"""The group key of a DecisionMade payload: the canonical bytes without the per-decision fields,
and None (full parsing) whenever the bytes do not have the canonical layout."""

from __future__ import annotations

import copy
from typing import Any

from ledger import canonical_json
from router.services.replay import recorded_key
from router.services.replay._compare import split_payload

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


def test_per_decision_fields_are_not_in_the_key() -> None:
    split = split_payload(canonical_json(PAYLOAD))
    assert split is not None
    key, decision_id, tenant = split
    assert decision_id == PAYLOAD["decision_id"].encode()
    assert tenant == "acme"
    for field in (b"decision_id", b"tenant", b"preview", b"request_digest", b"acme"):
        assert field not in key
    other = _with(
        decision_id="01a2150d-e605-7d63-8be6-5a660699e8f5",
        tenant="globex",
        preview=True,
        request_digest=None,
    )
    assert split_payload(canonical_json(other))[0] == key  # type: ignore[index]


def test_outcome_relevant_fields_are_in_the_key() -> None:
    key = split_payload(canonical_json(PAYLOAD))[0]  # type: ignore[index]
    for changed in (
        _with(selected={"index": 0, "id": "a/a@eu"}),
        _with(plan=[2]),
        _with(features={"tokens_in": 11, "tokens_out": 20}),
        _with(filter={"outcome": "12" * 32, "passing": 4}),
    ):
        split = split_payload(canonical_json(changed))
        assert split is not None
        assert split[0] != key
        assert recorded_key("s", changed) != recorded_key("s", PAYLOAD)


def test_non_canonical_bytes_fall_back_to_parsing() -> None:
    raw = canonical_json(PAYLOAD)
    sneaky = raw.replace(b'"tenant":"acme"', b'"tenant":"x\\",\\"selected\\":1"')
    assert split_payload(sneaky) is None
    assert split_payload(raw.replace(b'"preview":false', b'"preview":0')) is None
    assert (
        split_payload(raw.replace(b'"request_digest":"' + b"ab" * 32, b'"request_digest":"ab'))
        is None
    )
    assert split_payload(b"{}") is None
    assert split_payload(raw.replace(b"01a2150d-e605", b"01a2150d-e60")) is None


def test_the_idempotency_key_digest_is_per_decision() -> None:
    key = split_payload(canonical_json(PAYLOAD))[0]  # type: ignore[index]
    with_key = canonical_json(_with(idempotency_key_sha256="9f" * 32))
    split = split_payload(with_key)
    assert split is not None
    assert split[0] == key
    assert split_payload(with_key.replace(b"9f" * 32, b"9f" * 31 + b'"x')) is None
    assert split_payload(with_key.replace(b"9f" * 32, b"9f" * 31)) is None
