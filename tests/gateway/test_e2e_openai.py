"""End to end with the official openai package against the running gateway and loopback fakes."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import httpx
import openai
import pytest

from router.services.decisions import ATTEMPT_FINISHED, DECISION_MADE
from tests.gateway._harness import EU_POLICY, Gateway
from tests.support.fake_providers import FakeProvider, Fault
from unhardcoded.db import migrated_ledger


def _client(gateway: Gateway, name: str = "acme") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.keys[name], max_retries=0)


async def _events(gateway: Gateway, kind: str) -> list[dict[str, Any]]:
    async with migrated_ledger(gateway.db_url, home=gateway.tmp / "home") as ledger:
        return [e.payload_json() for e in await ledger.read(0, 10_000) if e.type == kind]


def events(gateway: Gateway, kind: str) -> list[dict[str, Any]]:
    """The payloads of every recorded event of one type, read from the SQLite file."""
    return asyncio.run(_events(gateway, kind))


def test_sync_completion_routes_by_policy_and_records_decision_then_attempt(
    gateway: Gateway, fake_openai: FakeProvider
) -> None:
    raw = _client(gateway).chat.completions.with_raw_response.create(
        model="anything",
        messages=[{"role": "user", "content": "hello gateway"}],
        extra_body={"policy": EU_POLICY},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "fake reply to: hello gateway"
    assert raw.headers["x-routed-model"] == "fakeoai/gpt-cheap@eu"
    decision_id = raw.headers["x-decision-id"]
    assert raw.headers["x-policy-fingerprint"].endswith("(sigma-pol/v1)")
    assert len(raw.headers["x-catalog-version"]) == 64
    sent = fake_openai.requests[-1].json()
    assert sent["model"] == "gpt-cheap"
    assert "policy" not in sent
    (decision,) = events(gateway, DECISION_MADE)
    assert decision["decision_id"] == decision_id
    (attempt,) = events(gateway, ATTEMPT_FINISHED)
    assert attempt["decision_id"] == decision_id
    assert attempt["status"] == "ok"
    assert attempt["entry"] == "fakeoai/gpt-cheap@eu"
    assert attempt["usage"] == {
        "in": completion.usage.prompt_tokens,
        "out": completion.usage.completion_tokens,
    }  # type: ignore[union-attr]
    assert attempt["cost_usd"] > 0


def test_failing_upstream_falls_back_to_the_next_plan_entry_and_records_both(
    gateway: Gateway, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    fake_openai.script("gpt-cheap", Fault(status=503))
    raw = _client(gateway).chat.completions.with_raw_response.create(
        model="x",
        messages=[{"role": "user", "content": "fall back please"}],
        extra_body={"policy": EU_POLICY},
    )
    assert raw.headers["x-routed-model"] == "fakeant/claude-mid@eu"
    assert raw.parse().choices[0].message.content == "fake reply to: fall back please"
    assert fake_anthropic.requests[-1].json()["model"] == "claude-mid"
    attempts = events(gateway, ATTEMPT_FINISHED)
    assert [
        (a["attempt"], a["entry"], a["status"], a["error_class"], a["http_status"])
        for a in attempts
    ] == [
        (1, "fakeoai/gpt-cheap@eu", "error", "server_error", 503),
        (2, "fakeant/claude-mid@eu", "ok", None, 200),
    ]
    assert {a["decision_id"] for a in attempts} == {raw.headers["x-decision-id"]}


def test_all_attempts_failing_is_502_with_the_attempts_and_never_leaves_the_plan(
    gateway: Gateway, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    fake_openai.always("*", Fault(status=500))
    fake_anthropic.always("*", Fault(status=429))
    with pytest.raises(openai.APIStatusError) as caught:
        _client(gateway).chat.completions.create(
            model="x",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"policy": EU_POLICY},
        )
    assert caught.value.status_code == 502
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "all_attempts_failed"
    assert [a["entry"] for a in error["attempts"]] == [
        "fakeoai/gpt-cheap@eu",
        "fakeant/claude-mid@eu",
    ]
    assert [a["error_class"] for a in error["attempts"]] == ["server_error", "rate_limited"]
    assert all(r.json()["model"] != "gpt-pricey" for r in fake_openai.requests)


def test_all_attempts_timing_out_is_504(
    gateway: Gateway, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    fake_openai.always("*", Fault(hang=True))
    fake_anthropic.always("*", Fault(hang=True))
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        headers=gateway.auth(),
        json={"model": "x", "messages": [{"role": "user", "content": "hi"}], "policy": EU_POLICY},
        timeout=30,
    )
    assert response.status_code == 504
    assert [a["error_class"] for a in response.json()["error"]["attempts"]] == [
        "timeout",
        "timeout",
    ]


def test_streaming_relays_sse_and_records_usage(gateway: Gateway) -> None:
    client = _client(gateway)
    with client.chat.completions.with_streaming_response.create(
        model="x",
        messages=[{"role": "user", "content": "stream this"}],
        stream=True,
        extra_body={"policy": EU_POLICY},
    ) as response:
        assert response.headers["x-routed-model"] == "fakeoai/gpt-cheap@eu"
        decision_id = response.headers["x-decision-id"]
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices
        )
    assert text == "fake reply to: stream this"
    (attempt,) = events(gateway, ATTEMPT_FINISHED)
    assert attempt["decision_id"] == decision_id
    assert attempt["status"] == "ok"
    assert attempt["usage"] is not None


def test_streaming_falls_back_before_the_first_byte(
    gateway: Gateway, fake_openai: FakeProvider
) -> None:
    fake_openai.script("gpt-cheap", Fault(status=429))
    client = _client(gateway)
    with client.chat.completions.with_streaming_response.create(
        model="x",
        messages=[{"role": "user", "content": "stream fallback"}],
        stream=True,
        extra_body={"policy": EU_POLICY},
    ) as response:
        assert response.headers["x-routed-model"] == "fakeant/claude-mid@eu"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "fake reply to: stream fallback"
    attempts = events(gateway, ATTEMPT_FINISHED)
    assert [(a["entry"], a["status"], a["error_class"]) for a in attempts] == [
        ("fakeoai/gpt-cheap@eu", "error", "rate_limited"),
        ("fakeant/claude-mid@eu", "ok", None),
    ]


def test_a_stream_cut_after_the_first_byte_is_not_retried_and_is_recorded_as_failed(
    gateway: Gateway, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    fake_openai.script("gpt-cheap", Fault(cut_after=2))
    client = _client(gateway)
    with (
        pytest.raises((openai.APIError, httpx.HTTPError)),
        client.chat.completions.with_streaming_response.create(
            model="x",
            messages=[{"role": "user", "content": "cut me"}],
            stream=True,
            extra_body={"policy": EU_POLICY},
        ) as response,
    ):
        for _ in response.parse():
            pass
    assert fake_anthropic.requests == []
    (attempt,) = events(gateway, ATTEMPT_FINISHED)
    assert attempt["status"] == "error"


async def test_async_client_concurrent_requests_each_get_their_own_decision(
    gateway: Gateway,
) -> None:
    client = openai.AsyncOpenAI(
        base_url=gateway.base_url, api_key=gateway.keys["acme"], max_retries=0
    )
    async with client:
        results = await asyncio.gather(
            *(
                client.chat.completions.with_raw_response.create(
                    model="x",
                    messages=[{"role": "user", "content": f"n{i}"}],
                    extra_body={"policy": EU_POLICY},
                )
                for i in range(8)
            )
        )
    ids = {r.headers["x-decision-id"] for r in results}
    assert len(ids) == 8
    assert sorted(r.parse().choices[0].message.content or "" for r in results) == sorted(
        f"fake reply to: n{i}" for i in range(8)
    )
    decided = {d["decision_id"] for d in await _events(gateway, DECISION_MADE)}
    assert ids == decided


def test_decision_is_durable_before_the_upstream_sees_the_request(
    gateway: Gateway, fake_openai: FakeProvider
) -> None:
    """The fake hangs on the request; while it hangs, the decision is already in the file."""
    fake_openai.script("gpt-cheap", Fault(hang=True))
    seen: list[int] = []

    def count_decisions() -> int:
        with sqlite3.connect(gateway.db_file) as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM ledger_events WHERE type = ?", (DECISION_MADE,)
                ).fetchone()[0]
            )

    before = count_decisions()
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        headers=gateway.auth(),
        json={"model": "x", "messages": [{"role": "user", "content": "hi"}], "policy": EU_POLICY},
        timeout=30,
    )
    # The first attempt hung until its timeout: the fake recorded it, and the decision row
    # was committed before (a request is sent only after decide() returned).
    seen.append(count_decisions())
    assert response.status_code == 200
    assert response.headers["x-routed-model"] == "fakeant/claude-mid@eu"
    assert seen == [before + 1]
