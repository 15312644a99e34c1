"""Guards the OpenAI fixture itself: the official `openai` SDK accepts its bodies and streams."""

from __future__ import annotations

import openai
import pytest

from tests.support.fake_providers import FAKE_OPENAI_KEY, FakeProvider, Fault, Reply, ToolCall


def test_sync_and_streaming_with_the_official_client(fake_openai: FakeProvider) -> None:
    client = openai.OpenAI(api_key=FAKE_OPENAI_KEY, base_url=fake_openai.base_url, max_retries=0)
    fake_openai.script("gpt-x", Reply(text="", tool_calls=[ToolCall("f", {"a": 1})]))
    completion = client.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.tool_calls is not None
    stream = client.chat.completions.create(
        model="gpt-x",
        messages=[{"role": "user", "content": "hello world"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "fake reply to: hello world"
    )
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 2
    assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {FAKE_OPENAI_KEY}"


def test_scripted_failures_reach_the_official_client(fake_openai: FakeProvider) -> None:
    client = openai.OpenAI(api_key=FAKE_OPENAI_KEY, base_url=fake_openai.base_url, max_retries=0)
    fake_openai.script("*", Fault(status=429))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="any", messages=[{"role": "user", "content": "x"}])
    fake_openai.always("gpt-x", Fault(status=500))
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="gpt-x", messages=[{"role": "user", "content": "x"}]
            )
    fake_openai.reset()
    assert fake_openai.requests == []
    client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "x"}])
