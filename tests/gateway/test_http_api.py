"""The HTTP surface: auth and scopes, /x/rank, the decision read API, errors, health, metrics."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from ledger import InclusionProof, verify_inclusion_document
from tests.gateway._harness import EU_POLICY, Gateway
from unhardcoded.cli import main

CHAT = {"model": "x", "messages": [{"role": "user", "content": "hello"}]}


def post_chat(gateway: Gateway, body: Any, key: str = "acme", **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/chat/completions", headers=gateway.auth(key), json=body, **kwargs
    )


def get(gateway: Gateway, path: str, key: str = "acme", **kwargs: Any) -> httpx.Response:
    return httpx.get(f"{gateway.root}{path}", headers=gateway.auth(key), **kwargs)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    return dict(body["error"])


def routed(gateway: Gateway, key: str = "acme") -> str:
    response = post_chat(gateway, {**CHAT, "policy": EU_POLICY}, key)
    assert response.status_code == 200
    return response.headers["x-decision-id"]


# -- authentication and scopes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "missing API key"),
        ({"authorization": "Bearer nope"}, "malformed API key"),
        ({"authorization": "Bearer uhk_0123456789ab_" + "A" * 43}, "invalid or revoked"),
    ],
)
def test_requests_without_a_valid_key_are_401(
    gateway: Gateway, headers: dict[str, str], fragment: str
) -> None:
    response = httpx.post(f"{gateway.base_url}/chat/completions", headers=headers, json=CHAT)
    assert response.status_code == 401
    error = error_of(response)
    assert fragment in error["message"]
    assert error["type"] == "authentication_error"


def test_a_key_with_a_wrong_secret_for_a_real_id_is_401(gateway: Gateway) -> None:
    real = gateway.keys["acme"]
    forged = real[:-3] + ("AAA" if not real.endswith("AAA") else "BBB")
    response = httpx.get(
        f"{gateway.root}/x/decisions", headers={"authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401


def test_a_revoked_key_stops_working(gateway: Gateway) -> None:
    assert get(gateway, "/x/decisions", "reader").status_code == 200
    key_id = gateway.keys["reader"][4:16]
    result = CliRunner().invoke(main, ["keys", "revoke", key_id, "--db", gateway.db_url])
    assert result.exit_code == 0, result.output
    assert get(gateway, "/x/decisions", "reader").status_code == 401


def test_a_read_only_key_cannot_route(gateway: Gateway) -> None:
    response = post_chat(gateway, {**CHAT, "policy": EU_POLICY}, key="reader")
    assert response.status_code == 403
    assert error_of(response)["code"] == "insufficient_scope"


def test_a_tenant_never_sees_another_tenants_decision(gateway: Gateway) -> None:
    decision_id = routed(gateway, "acme")
    assert get(gateway, f"/x/decisions/{decision_id}", "acme").status_code == 200
    assert get(gateway, f"/x/decisions/{decision_id}", "reader").status_code == 200
    for path in (f"/x/decisions/{decision_id}", f"/x/decisions/{decision_id}/proof"):
        response = get(gateway, path, "globex")
        assert response.status_code == 404
        assert error_of(response)["type"] == "not_found_error"
    assert get(gateway, f"/x/decisions/{decision_id}", "auditor").status_code == 200
    assert get(gateway, "/x/decisions", "globex").json()["data"] == []
    assert get(gateway, "/x/decisions?tenant=acme", "globex").json()["data"] == []


# -- the read API --------------------------------------------------------------------------------


def test_decision_trace_holds_the_attempts_and_a_proof_verifies(gateway: Gateway) -> None:
    decision_id = routed(gateway)
    trace = get(gateway, f"/x/decisions/{decision_id}").json()
    assert trace["decision_id"] == decision_id
    assert trace["tenant"] == "acme"
    assert trace["plan"] == ["fakeoai/gpt-cheap@eu", "fakeant/claude-mid@eu"]
    assert [a["status"] for a in trace["attempts"]] == ["ok"]
    proof = get(gateway, f"/x/decisions/{decision_id}/proof").json()
    assert proof["event_id"] == decision_id
    checkpoint = get(gateway, "/x/checkpoints/latest").json()
    assert checkpoint["tree_size"] >= 1
    assert checkpoint["note"].startswith("unhardcoded/")
    document = InclusionProof.from_json(json.dumps(proof["proof"]))
    verify_inclusion_document(document, proof["checkpoint"], proof["verifier_key"])


def test_decisions_list_paginates(gateway: Gateway) -> None:
    made = [routed(gateway) for _ in range(3)]
    first = get(gateway, "/x/decisions?limit=2").json()
    assert len(first["data"]) == 2
    second = get(gateway, f"/x/decisions?limit=2&cursor={first['next_cursor']}").json()
    listed = [d["decision_id"] for d in first["data"] + second["data"]]
    assert listed == made
    assert second["next_cursor"] is None


def test_unknown_and_malformed_decision_ids_are_404(gateway: Gateway) -> None:
    for ref in ("0190f3c4-0000-7000-8000-000000000000", "1", "not-an-id"):
        assert get(gateway, f"/x/decisions/{ref}").status_code == 404


# -- /x/rank -------------------------------------------------------------------------------------


def test_rank_is_not_recorded_by_default_and_recorded_as_preview_when_asked(
    gateway: Gateway,
) -> None:
    url = f"{gateway.root}/x/rank"
    body = {"policy": EU_POLICY, "request": CHAT}
    plain = httpx.post(url, headers=gateway.auth(), json=body).json()
    assert plain["decision_id"] is None
    assert plain["trace"]["plan"] == ["fakeoai/gpt-cheap@eu", "fakeant/claude-mid@eu"]
    assert get(gateway, "/x/decisions").json()["data"] == []
    recorded = httpx.post(url, headers=gateway.auth(), json={**body, "record": True})
    decision_id = recorded.json()["decision_id"]
    assert recorded.headers["x-decision-id"] == decision_id
    (listed,) = get(gateway, "/x/decisions").json()["data"]
    assert listed["decision_id"] == decision_id
    assert listed["preview"] is True
    assert recorded.json()["trace"]["plan"] == plain["trace"]["plan"]


# -- errors --------------------------------------------------------------------------------------


def test_invalid_policy_is_400_with_a_pointer_into_the_policy(gateway: Gateway) -> None:
    policy = {**EU_POLICY, "rules": [{"id": "r", "when": ["eq", "region"]}]}
    response = post_chat(gateway, {**CHAT, "policy": policy})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_policy"
    assert error["param"].startswith("/policy/rules/0/when")


def test_no_entry_passes_is_422_with_the_trace_summary_and_is_recorded(gateway: Gateway) -> None:
    policy = {**EU_POLICY, "rules": [{"id": "mars", "when": ["eq", "region", "mars"]}]}
    response = post_chat(gateway, {**CHAT, "policy": policy})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "no_entry_passes"
    assert error["removed_by_rule"] == {"mars": 3}
    assert get(gateway, f"/x/decisions/{error['decision_id']}").status_code == 200
    metrics = httpx.get(f"{gateway.root}/metrics").text
    assert 'unhardcoded_decisions_total{outcome="no_entry"} 1.0' in metrics


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", ""),
        (b'{"messages": [], "policy": NaN}', None),
        (b"\xff\xfe", None),
        (
            b'{"model": "x", "messages": "hi", "policy": ' + json.dumps(EU_POLICY).encode() + b"}",
            "/messages",
        ),
        (b'{"model": "x", "messages": []}', "/policy"),
        (b'{"model": "x", "messages": [{}], "stream": "yes", "policy": {}}', "/stream"),
        (b"[" * 50_000, None),
    ],
)
def test_malformed_bodies_are_400_in_the_openai_shape(
    gateway: Gateway, content: bytes, param: str | None
) -> None:
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        headers={**gateway.auth(), "content-type": "application/json"},
        content=content,
    )
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["param"] == param


def test_bodies_over_the_limit_are_413(gateway: Gateway) -> None:
    big = {**CHAT, "policy": EU_POLICY, "pad": "x" * (gateway.max_body_bytes + 1)}
    response = post_chat(gateway, big)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


def test_unknown_route_and_method_use_the_error_shape(gateway: Gateway) -> None:
    assert error_of(httpx.get(f"{gateway.root}/nope"))["type"] == "not_found_error"
    assert httpx.get(f"{gateway.base_url}/chat/completions").status_code == 405


# -- health, metrics, docs ------------------------------------------------------------------------


def test_health_metrics_and_openapi(gateway: Gateway) -> None:
    routed(gateway)
    assert httpx.get(f"{gateway.root}/healthz").json()["status"] == "ok"
    metrics = httpx.get(f"{gateway.root}/metrics").text
    assert (
        'unhardcoded_http_requests_total{route="/v1/chat/completions",status="200"} 1.0' in metrics
    )
    assert 'unhardcoded_upstream_attempts_total{error_class="ok",provider="fakeoai"} 1.0' in metrics
    assert 'unhardcoded_decisions_total{outcome="routed"} 1.0' in metrics
    schema = httpx.get(f"{gateway.root}/openapi.json").json()
    chat = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    policy = chat["content"]["application/json"]["schema"]["properties"]["policy"]
    assert "sigma-pol/v1" in policy["description"]
    assert httpx.get(f"{gateway.root}/docs").status_code == 200
