"""`POST /v1/chat/completions` is served past FastAPI's router (unhardcoded.app._fast): the same
answers, headers, errors, access log and metrics as through the ordinary FastAPI route."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.gateway._harness import EU_POLICY, Gateway
from unhardcoded.app._fast import GatewayApp

CHAT = {"model": "x", "messages": [{"role": "user", "content": "hello"}]}
VARIABLE = {"x-decision-id", "date", "content-length"}

CASES: list[tuple[str, Any, str]] = [
    ("routed", {**CHAT, "policy": EU_POLICY}, "acme"),
    ("bad json", b"{nope", "acme"),
    ("no policy", CHAT, "acme"),
    ("bad policy", {**CHAT, "policy": {"v": "sigma-pol/v1", "rank": 3}}, "acme"),
    ("stream not bool", {**CHAT, "policy": EU_POLICY, "stream": "yes"}, "acme"),
    ("no scope", {**CHAT, "policy": EU_POLICY}, "auditor"),
    ("no key", {**CHAT, "policy": EU_POLICY}, ""),
]


def _exchange(gateway: Gateway, body: Any, key: str) -> tuple[int, dict[str, str], Any]:
    headers = gateway.auth(key) if key else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        headers={**headers, "content-type": "application/json"},
        content=content,
    )
    kept = {k: v for k, v in response.headers.items() if k not in VARIABLE}
    answer = response.json()
    for volatile in ("id", "created", "decision_id"):
        (answer.get("error") or answer).pop(volatile, None)
    return response.status_code, kept, answer


def _metric_lines(gateway: Gateway) -> list[str]:
    text = httpx.get(f"{gateway.root}/metrics").text
    return sorted(
        line.rsplit(" ", 1)[0] + " " + line.rsplit(" ", 1)[1]
        for line in text.splitlines()
        if line.startswith("unhardcoded_http_requests_total{") and "/v1/chat/completions" in line
    )


@pytest.mark.parametrize(("name", "body", "key"), CASES, ids=[c[0] for c in CASES])
def test_the_direct_route_answers_as_the_fastapi_route(
    gateway: Gateway, name: str, body: Any, key: str
) -> None:
    app = gateway.app
    assert isinstance(app, GatewayApp)
    assert app.direct_chat  # what `create_app` serves by default
    direct = _exchange(gateway, body, key)
    app.direct_chat = False
    try:
        routed = _exchange(gateway, body, key)
    finally:
        app.direct_chat = True
    assert direct == routed
    assert direct[0] < 500


def test_the_direct_route_logs_and_counts_like_the_fastapi_route(
    gateway: Gateway, captured_logs: Any
) -> None:
    app = gateway.app
    assert isinstance(app, GatewayApp)
    for direct in (True, False):
        app.direct_chat = direct
        for _, body, key in CASES[:3]:
            _exchange(gateway, body, key)
    app.direct_chat = True
    lines = [json.loads(line) for line in captured_logs.lines]
    logged = [line for line in lines if line["logger"] == "unhardcoded.access"]
    assert "decision_id" in logged[0]
    access = [
        {k: v for k, v in line.items() if k not in ("ts", "latency_ms", "decision_id")}
        for line in logged
    ]
    assert len(access) == 6
    assert access[:3] == access[3:]
    assert {a["route"] for a in access} == {"/v1/chat/completions"}
    counted = _metric_lines(gateway)
    assert 'unhardcoded_http_requests_total{route="/v1/chat/completions",status="200"} 2.0' in (
        counted
    )
    assert 'unhardcoded_http_requests_total{route="/v1/chat/completions",status="400"} 4.0' in (
        counted
    )
