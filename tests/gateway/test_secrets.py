"""Provider keys and no_log request bodies never reach the database file, the logs or responses;
BYOK per request; the echo provider for trying without keys."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai

from router.services.upstream import ECHO_PREFIX
from tests.gateway._harness import EU_POLICY, NO_LOG_POLICY, Gateway, provider_env
from tests.gateway.conftest import Captured
from tests.support.fake_providers import (
    FAKE_ANTHROPIC_KEY,
    FAKE_OPENAI_KEY,
    FakeProvider,
    Fault,
    Reply,
)

TENANT_KEY = "sk-tenant-own-key-5be1c0d9a7f34e21"
MARKER = "PRIVATE-BODY-MARKER-93c1f0"


def database_bytes(gateway: Gateway) -> bytes:
    """The SQLite file and its WAL, as bytes."""
    found = b""
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{gateway.db_file}{suffix}")
        if path.exists():
            found += path.read_bytes()
    return found


def test_no_key_and_no_no_log_body_anywhere(
    tmp_path: Path,
    fake_openai: FakeProvider,
    fake_anthropic: FakeProvider,
    captured_logs: Captured,
) -> None:
    env = provider_env(
        fake_openai.base_url, FAKE_OPENAI_KEY, fake_anthropic.base_url, FAKE_ANTHROPIC_KEY
    )
    with Gateway(tmp_path, env, store_request_bodies=True) as gateway:
        fake_openai.script("gpt-cheap", Fault(status=500), Fault(status=429))
        # The fakes would echo the prompt back in their reply; answer with fixed text instead.
        fake_openai.always("*", Reply(text="fine"))
        fake_anthropic.always("*", Reply(text="fine"))
        responses = []
        client = openai.OpenAI(
            base_url=gateway.base_url, api_key=gateway.keys["acme"], max_retries=0
        )
        for _ in range(2):
            raw = client.chat.completions.with_raw_response.create(
                model="x",
                messages=[{"role": "user", "content": f"{MARKER} keep this private"}],
                extra_body={"policy": NO_LOG_POLICY},
            )
            responses.append(raw.http_response)
        fallback = httpx.post(
            f"{gateway.base_url}/chat/completions",
            headers={**gateway.auth(), "x-provider-key-fakeoai": TENANT_KEY},
            json={
                "model": "x",
                "messages": [{"role": "user", "content": f"{MARKER} again"}],
                "policy": NO_LOG_POLICY,
                "stream": True,
            },
        )
        responses.append(fallback)
        # A control: a policy without a no_log rule does get its body stored (the grep works).
        control = httpx.post(
            f"{gateway.base_url}/chat/completions",
            headers=gateway.auth(),
            json={
                "model": "x",
                "messages": [{"role": "user", "content": "CONTROL-BODY-7d2e"}],
                "policy": EU_POLICY,
            },
        )
        assert control.status_code == 200
    stored = database_bytes(gateway)
    assert b"CONTROL-BODY-7d2e" in stored
    texts = [r.text + json.dumps(dict(r.headers)) for r in responses]
    logs = "\n".join(captured_logs.lines)
    assert any('"decision_id"' in line for line in captured_logs.lines)
    for secret in (FAKE_OPENAI_KEY, FAKE_ANTHROPIC_KEY, TENANT_KEY, MARKER, gateway.keys["acme"]):
        assert secret.encode() not in stored, secret
        assert secret not in logs, secret
        for text in texts:
            assert secret not in text, secret
    # The third request's tenant key is refused by the fake: the caller's own 401, an error
    # response that still must not hold the key it was sent.
    assert [r.status_code for r in responses] == [200, 200, 401]


def test_byok_header_replaces_the_operator_key_for_that_request(
    tmp_path: Path, fake_anthropic: FakeProvider
) -> None:
    with FakeProvider("openai", api_key=TENANT_KEY) as tenant_only:
        env = provider_env(
            tenant_only.base_url, "sk-operator-wrong", fake_anthropic.base_url, FAKE_ANTHROPIC_KEY
        )
        with Gateway(tmp_path, env) as gateway:
            body = {
                "model": "x",
                "messages": [{"role": "user", "content": "hi"}],
                "policy": EU_POLICY,
            }
            url = f"{gateway.base_url}/chat/completions"
            own = httpx.post(
                url, headers={**gateway.auth(), "X-Provider-Key-FakeOAI": TENANT_KEY}, json=body
            )
            assert own.status_code == 200
            assert own.headers["x-routed-model"] == "fakeoai/gpt-cheap@eu"
            assert tenant_only.requests[-1].headers["authorization"] == f"Bearer {TENANT_KEY}"
            # Without it, the operator's (wrong) key is refused: not retryable, no fallback.
            refused = httpx.post(url, headers=gateway.auth(), json=body)
            assert refused.status_code == 502
            (attempt,) = refused.json()["error"]["attempts"]
            assert attempt["error_class"] == "client_error"
            assert attempt["key_source"] == "operator"
            assert "sk-operator-wrong" not in refused.text
            bad = httpx.post(url, headers={**gateway.auth(), "x-provider-key-Bad!": "k"}, json=body)
            assert bad.status_code == 400


def test_echo_mode_answers_without_any_provider_and_says_so(tmp_path: Path) -> None:
    with Gateway(tmp_path, {}, echo_all=True) as gateway:
        client = openai.OpenAI(
            base_url=gateway.base_url, api_key=gateway.keys["acme"], max_retries=0
        )
        raw = client.chat.completions.with_raw_response.create(
            model="x",
            messages=[{"role": "user", "content": "hello echo"}],
            extra_body={"policy": EU_POLICY},
        )
        completion = raw.parse()
        assert (completion.choices[0].message.content or "").startswith(ECHO_PREFIX)
        assert completion.system_fingerprint == "echo-not-a-real-provider"
        assert raw.headers["x-upstream"] == "echo"
        trace = httpx.get(
            f"{gateway.root}/x/decisions/{raw.headers['x-decision-id']}", headers=gateway.auth()
        ).json()
        (attempt,) = trace["attempts"]
        assert attempt["status"] == "ok"
        assert attempt["cost_usd"] == 0.0
