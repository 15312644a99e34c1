"""Idempotency keys: a request retried with its `Idempotency-Key` gets the first one's answer —
same decision id, no second decision, no second upstream call — per tenant, within the window,
across routers on one database; the database and the ledger hold the key's digest only."""

from __future__ import annotations

import concurrent.futures
import hashlib
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from router.services.decisions import ATTEMPT_FINISHED, DECISION_MADE
from tests.gateway._harness import EU_POLICY, NO_LOG_POLICY, Gateway, provider_env
from tests.gateway.test_e2e_openai import events
from tests.support.fake_providers import (
    FAKE_ANTHROPIC_KEY,
    FAKE_OPENAI_KEY,
    FakeProvider,
    Fault,
)

MESSAGES = [{"role": "user", "content": "hello once"}]
BODY: dict[str, Any] = {"model": "x", "messages": MESSAGES, "policy": EU_POLICY}


def post(
    gateway: Gateway, key: str | None, body: dict[str, Any] = BODY, tenant: str = "acme"
) -> httpx.Response:
    headers = gateway.auth(tenant)
    if key is not None:
        headers["idempotency-key"] = key
    return httpx.post(
        f"{gateway.base_url}/chat/completions", headers=headers, json=body, timeout=30
    )


def stored_rows(gateway: Gateway) -> list[tuple[Any, ...]]:
    """(tenant, key_sha256, state, decision_id, body) of every row of the SQLite file."""
    with sqlite3.connect(gateway.db_file) as conn:
        return conn.execute(
            "SELECT tenant, key_sha256, state, decision_id, body FROM gateway_idempotency_keys"
        ).fetchall()


def test_the_sdks_retry_after_a_timeout_gets_the_first_decision(
    gateway: Gateway, fake_openai: FakeProvider
) -> None:
    """The first attempt times out on the client's side while the model is still answering; the
    SDK's own retry (same options, so the same Idempotency-Key) waits for the first request and
    gets its answer: one decision, one upstream call."""
    fake_openai.script("gpt-cheap", Fault(delay_s=1.5))
    key = f"order-{uuid.uuid4()}"
    client = openai.OpenAI(
        base_url=gateway.base_url, api_key=gateway.keys["acme"], timeout=0.8, max_retries=3
    )
    raw = client.chat.completions.with_raw_response.create(
        model="x",
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_body={"policy": EU_POLICY},
        extra_headers={"Idempotency-Key": key},
    )
    assert raw.retries_taken >= 1  # the first attempt did time out
    assert raw.headers["idempotent-replayed"] == "true"
    assert raw.parse().choices[0].message.content == "fake reply to: hello once"
    (decision,) = events(gateway, DECISION_MADE)
    assert raw.headers["x-decision-id"] == decision["decision_id"]
    assert decision["idempotency_key_sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert len(fake_openai.requests) == 1
    assert len(events(gateway, ATTEMPT_FINISHED)) == 1
    assert key.encode() not in gateway.db_file.read_bytes()  # the digest only, never the key


def test_a_retry_after_the_answer_replays_it(gateway: Gateway, fake_openai: FakeProvider) -> None:
    first = post(gateway, "k-1")
    again = post(gateway, "k-1")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["x-decision-id"] == first.headers["x-decision-id"]
    assert again.headers["x-routed-model"] == first.headers["x-routed-model"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(events(gateway, DECISION_MADE)) == 1
    assert len(fake_openai.requests) == 1
    ((tenant, digest, state, decision_id, _body),) = stored_rows(gateway)
    assert (tenant, digest, state) == ("acme", hashlib.sha256(b"k-1").digest(), "done")
    assert decision_id == first.headers["x-decision-id"]


def test_requests_without_the_header_are_each_decided(
    gateway: Gateway, fake_openai: FakeProvider
) -> None:
    assert post(gateway, None).status_code == post(gateway, None).status_code == 200
    assert len(events(gateway, DECISION_MADE)) == 2
    assert "idempotency_key_sha256" not in events(gateway, DECISION_MADE)[0]
    assert stored_rows(gateway) == []


def test_the_key_belongs_to_the_tenant(gateway: Gateway, fake_openai: FakeProvider) -> None:
    acme, globex = post(gateway, "shared"), post(gateway, "shared", tenant="globex")
    assert acme.status_code == globex.status_code == 200
    assert acme.headers["x-decision-id"] != globex.headers["x-decision-id"]
    assert "idempotent-replayed" not in globex.headers
    assert len(fake_openai.requests) == 2


def test_the_same_key_for_another_request_is_refused(
    gateway: Gateway, fake_openai: FakeProvider
) -> None:
    assert post(gateway, "k-2").status_code == 200
    other = {**BODY, "messages": [{"role": "user", "content": "something else"}]}
    refused = post(gateway, "k-2", other)
    assert refused.status_code == 422
    assert refused.headers["x-should-retry"] == "false"
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "idempotency_key_reused")
    assert len(events(gateway, DECISION_MADE)) == 1
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "clé"])
def test_a_malformed_key_is_a_400(gateway: Gateway, key: str) -> None:
    headers = {**gateway.auth(), "idempotency-key": key}
    answer = httpx.post(
        f"{gateway.base_url}/chat/completions",
        headers={k: v.encode() for k, v in headers.items()},
        json=BODY,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_idempotency_key"
    assert answer.headers["x-should-retry"] == "false"
    assert events(gateway, DECISION_MADE) == []


def test_a_final_error_is_replayed_a_retryable_one_gives_the_key_up(
    gateway: Gateway, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    fake_openai.script("gpt-cheap", Fault(status=400))
    refused = post(gateway, "k-final")
    assert (refused.status_code, refused.headers["x-should-retry"]) == (400, "false")
    again = post(gateway, "k-final")
    assert again.status_code == 400
    assert again.json() == refused.json()  # same decision id in the error
    assert again.headers["idempotent-replayed"] == "true"
    assert len(fake_openai.requests) == 1

    fake_openai.script("gpt-cheap", Fault(status=503))
    fake_anthropic.script("claude-mid", Fault(status=503))
    failed = post(gateway, "k-transient")
    assert (failed.status_code, failed.headers["x-should-retry"]) == (502, "true")
    retried = post(gateway, "k-transient")  # what the SDK does next: a new attempt
    assert retried.status_code == 200
    assert "idempotent-replayed" not in retried.headers
    assert retried.headers["x-decision-id"] != failed.json()["error"]["decision_id"]
    assert post(gateway, "k-transient").headers["idempotent-replayed"] == "true"
    assert len(events(gateway, DECISION_MADE)) == 3


def test_a_stream_or_a_no_log_answer_is_never_stored(
    gateway: Gateway, fake_openai: FakeProvider
) -> None:
    streamed = {**BODY, "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        headers={**gateway.auth(), "idempotency-key": "k-stream"},
        json=streamed,
    ) as first:
        assert first.status_code == 200
        first.read()
    again = post(gateway, "k-stream", streamed)
    assert (again.status_code, again.headers["x-should-retry"]) == (409, "false")
    error = again.json()["error"]
    assert error["code"] == "idempotency_answer_not_stored"
    assert error["decision_id"] == first.headers["x-decision-id"]

    private = {**BODY, "policy": NO_LOG_POLICY}
    answered = post(gateway, "k-no-log", private)
    assert answered.status_code == 200
    again = post(gateway, "k-no-log", private)
    assert again.status_code == 409
    assert again.json()["error"]["decision_id"] == answered.headers["x-decision-id"]
    assert len(fake_openai.requests) == 2
    rows = {state: body for _t, _k, state, _d, body in stored_rows(gateway)}
    assert rows == {"unstored": None}
    assert b"fake reply to" not in gateway.db_file.read_bytes()


def test_a_retry_while_the_first_is_in_flight_is_told_when_to_come_back(
    tmp_path: Path, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    env = provider_env(
        fake_openai.base_url, FAKE_OPENAI_KEY, fake_anthropic.base_url, FAKE_ANTHROPIC_KEY
    )
    with Gateway(tmp_path, env, idempotency_wait_s=0.2) as gateway:
        fake_openai.script("gpt-cheap", Fault(delay_s=1.5))
        first: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: first.append(post(gateway, "k-slow")))
        thread.start()
        while not fake_openai.requests:  # the first request is with the model
            time.sleep(0.02)
        busy = post(gateway, "k-slow")
        assert busy.status_code == 409
        assert busy.headers["x-should-retry"] == "true"
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["code"] == "idempotency_in_flight"
        thread.join()
        later = post(gateway, "k-slow")
        assert later.headers["x-decision-id"] == first[0].headers["x-decision-id"]
        assert len(fake_openai.requests) == 1
        assert len(events(gateway, DECISION_MADE)) == 1


def test_after_the_window_the_key_is_new_again(
    tmp_path: Path, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    env = provider_env(
        fake_openai.base_url, FAKE_OPENAI_KEY, fake_anthropic.base_url, FAKE_ANTHROPIC_KEY
    )
    with Gateway(tmp_path, env, idempotency_window_s=0.5) as gateway:
        first = post(gateway, "k-window")
        time.sleep(0.6)
        second = post(gateway, "k-window")
        assert "idempotent-replayed" not in second.headers
        assert second.headers["x-decision-id"] != first.headers["x-decision-id"]
        assert len(events(gateway, DECISION_MADE)) == 2


def race(routers: list[Gateway], key: str, requests: int) -> list[httpx.Response]:
    """`requests` concurrent requests with one key, spread over the routers."""
    with concurrent.futures.ThreadPoolExecutor(requests) as pool:
        futures = [pool.submit(post, routers[i % len(routers)], key) for i in range(requests)]
        return [f.result() for f in futures]


def two_routers(
    tmp_path: Path, env: dict[str, str], database_url: str | None = None
) -> tuple[Gateway, Gateway]:
    """Two gateways (apps with their own event loop, engine and ledger) on one database."""
    first = Gateway(tmp_path, env, database_url=database_url).start()
    second = Gateway(tmp_path, env, database_url=database_url).start()
    return first, second


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_two_routers_racing_one_key_make_one_decision_and_one_upstream_call(
    tmp_path: Path,
    fake_openai: FakeProvider,
    fake_anthropic: FakeProvider,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    url = None
    if backend == "postgresql":
        from unhardcoded._database_url import normalize_database_url

        url = normalize_database_url(request.getfixturevalue("pg_database"))[0]
    env = provider_env(
        fake_openai.base_url, FAKE_OPENAI_KEY, fake_anthropic.base_url, FAKE_ANTHROPIC_KEY
    )
    fake_openai.always("gpt-cheap", Fault(delay_s=0.5))
    routers = two_routers(tmp_path, env, url)
    try:
        answers = race(list(routers), "k-race", 8)
        assert [a.status_code for a in answers] == [200] * 8
        assert len({a.headers["x-decision-id"] for a in answers}) == 1
        assert len({a.content for a in answers}) == 1
        assert sum("idempotent-replayed" in a.headers for a in answers) == 7
        assert len(fake_openai.requests) == 1
        assert len(events(routers[0], DECISION_MADE)) == 1
    finally:
        for router in routers:
            router.stop()


def test_no_entry_passing_is_final_and_replayed_with_its_decision(gateway: Gateway) -> None:
    nothing = {
        **BODY,
        "policy": {**EU_POLICY, "rules": [{"id": "mars", "when": ["eq", "region", "mars"]}]},
    }
    first = post(gateway, "k-none", nothing)
    assert (first.status_code, first.json()["error"]["code"]) == (422, "no_entry_passes")
    again = post(gateway, "k-none", nothing)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    ((_t, _k, state, decision_id, _b),) = stored_rows(gateway)
    assert (state, decision_id) == ("done", first.json()["error"]["decision_id"])
    assert len(events(gateway, DECISION_MADE)) == 1


def test_decisions_made_under_keys_replay_and_read_back(gateway: Gateway) -> None:
    answers = [post(gateway, key) for key in ("r-1", "r-2", "r-1")]
    assert post(gateway, None).status_code == 200
    replay = httpx.post(
        f"{gateway.root}/x/replay",
        headers=gateway.auth("admin"),
        json={"mode": "original", "record": False},
        timeout=60,
    )
    report = replay.json()
    assert (report["decisions"], report["mismatches"]) == (3, 0)
    read = httpx.get(
        f"{gateway.root}/x/decisions/{answers[0].headers['x-decision-id']}",
        headers=gateway.auth(),
    ).json()
    assert read["idempotency_key_sha256"] == hashlib.sha256(b"r-1").hexdigest()
