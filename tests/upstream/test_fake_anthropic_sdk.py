"""Guards the Anthropic fixture itself: the official `anthropic` SDK accepts its bodies, streams
and errors, so the translated path is tested against the protocol as the SDK reads it."""

from __future__ import annotations

import anthropic
import pytest

from tests.support.fake_providers import FAKE_ANTHROPIC_KEY, FakeProvider, Fault, Reply, ToolCall


def client(fake: FakeProvider, **options: int) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=FAKE_ANTHROPIC_KEY, base_url=fake.base_url, **options)


def test_messages_and_streams_with_the_official_client(fake_anthropic: FakeProvider) -> None:
    fake_anthropic.script("claude-x", Reply(text="", tool_calls=[ToolCall("f", {"a": 1})]))
    message = client(fake_anthropic, max_retries=0).messages.create(
        model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    (block,) = message.content
    assert block.type == "tool_use"
    assert (block.name, block.input) == ("f", {"a": 1})
    assert message.stop_reason == "tool_use"
    with client(fake_anthropic, max_retries=0).messages.stream(
        model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hello world"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "fake reply to: hello world"
    assert final.usage.input_tokens == 2
    sent = fake_anthropic.requests[-1]
    given = sent.headers.get("x-api-key") or sent.headers["authorization"].removeprefix("Bearer ")
    assert given == FAKE_ANTHROPIC_KEY  # newer SDKs send the key as a bearer token
    assert sent.headers["anthropic-version"]


def test_scripted_failures_reach_the_official_client(fake_anthropic: FakeProvider) -> None:
    fake_anthropic.script("*", Fault(status=529))
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        client(fake_anthropic, max_retries=0).messages.create(
            model="claude-x", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert overloaded.value.status_code == 529
    fake_anthropic.script("claude-x", Fault(status=429, headers={"retry-after": "0"}))
    answered = client(fake_anthropic, max_retries=1).messages.create(
        model="claude-x", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    assert answered.content[0].type == "text"
    assert len(fake_anthropic.requests) == 3  # the 429 was retried by the SDK, as told
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(
            api_key="sk-wrong", base_url=fake_anthropic.base_url, max_retries=0
        ).messages.create(
            model="claude-x", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
