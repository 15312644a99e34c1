"""Appends and key files the ledger refuses, each with the reason, and nothing written."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ledger import KEY_FILE_NAME, InvalidEventError, KeyFileError, Ledger, NewEvent
from unhardcoded.db import migrated_ledger


@pytest.fixture
async def led(tmp_path: Path) -> AsyncIterator[Ledger]:
    async with migrated_ledger(f"sqlite+aiosqlite:///{tmp_path / 'bad.db'}", home=tmp_path) as led:
        yield led


BAD_EVENTS: list[tuple[str, Any, str]] = [
    ("an empty type", NewEvent("", "s", {}), "event type must be a 1..200 character string"),
    ("a type too long", NewEvent("T" * 201, "s", {}), "event type must be a 1..200"),
    ("a type not a string", NewEvent(7, "s", {}), "event type must be"),  # type: ignore[arg-type]
    ("a stream id too long", NewEvent("T", "s" * 501, {}), "stream id must be a 1..500"),
    ("a stream id not a string", NewEvent("T", b"s", {}), "stream id must be"),  # type: ignore[arg-type]
    ("a type with a lone surrogate", NewEvent("T\ud800", "s", {}), "not valid UTF-8"),
    ("a stream id with a lone surrogate", NewEvent("T", "s\udfff", {}), "not valid UTF-8"),
    (
        "an attachment that is not bytes",
        NewEvent("T", "s", {}, attachments={"body": "text"}),  # type: ignore[dict-item]
        "attachment 'body' must be bytes, got str",
    ),
    ("not an event", {"type": "T"}, "append takes a NewEvent or a sequence of them, got dict"),
    ("a string", "T", "append takes a NewEvent or a sequence of them, got str"),
    ("a list holding something else", [{"type": "T"}], "append takes NewEvent objects, got dict"),
]


@pytest.mark.parametrize(("what", "event", "reason"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
async def test_a_bad_event_is_refused_with_the_reason(
    led: Ledger, what: str, event: Any, reason: str
) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        await led.append(event)
    assert await led.count() == 0


async def test_bad_append_arguments_are_refused(led: Ledger) -> None:
    with pytest.raises(InvalidEventError, match="at least one event"):
        await led.append([])
    for bad in (True, "1", 1.0):
        with pytest.raises(InvalidEventError, match="expected_version must be an int"):
            await led.append(NewEvent("T", "s", {}), expected_version=bad)  # type: ignore[arg-type]
    two_streams = [NewEvent("T", "a", {}), NewEvent("T", "b", {})]
    with pytest.raises(InvalidEventError, match="all the events in one stream"):
        await led.append(two_streams, expected_version=0)
    assert await led.count() == 0


async def test_an_id_given_twice_in_one_append_is_named(led: Ledger) -> None:
    given = uuid.uuid4()
    twice = [NewEvent("T", "s", {"n": 1}), *(NewEvent("T", "s", {}, event_id=given),) * 2]
    with pytest.raises(InvalidEventError, match=f"event id {given} is given twice"):
        await led.append(twice, expected_version=0)
    with pytest.raises(InvalidEventError, match=f"event id {given} is given twice"):
        await led.append(twice)
    assert await led.count() == 0


async def test_a_recorded_id_in_a_multi_event_append_is_named(led: Ledger) -> None:
    recorded = uuid.uuid4()
    await led.append(NewEvent("T", "s", {}, event_id=recorded))
    events = [
        NewEvent("T", "s", {"n": 2}, event_id=uuid.uuid4()),
        NewEvent("T", "s", {}, event_id=recorded),
    ]
    with pytest.raises(InvalidEventError, match=f"event id {recorded} is already recorded"):
        await led.append(events, expected_version=1)
    assert await led.count() == 1


def _key_file(home: Path, content: str) -> None:
    home.mkdir(mode=0o700)
    path = home / KEY_FILE_NAME
    path.write_text(content, encoding="ascii")
    path.chmod(0o600)


SEED = base64.b64encode(bytes(range(32))).decode()
BAD_KEY_FILES = [
    ("a foreign file", "-----BEGIN PRIVATE KEY-----\n", "not an unhardcoded signing key file"),
    ("a key line that is not base64", None, "the key line is not base64"),
    ("a seed of the wrong size", None, "an Ed25519 seed is 32 bytes, the file holds 31"),
]


@pytest.mark.parametrize(
    ("what", "content", "reason"), BAD_KEY_FILES, ids=[c[0] for c in BAD_KEY_FILES]
)
async def test_a_damaged_key_file_is_refused_not_replaced(
    tmp_path: Path, what: str, content: str | None, reason: str
) -> None:
    home = tmp_path / "home"
    async with migrated_ledger(
        f"sqlite+aiosqlite:///{tmp_path / 'first.db'}", home=tmp_path / "ok"
    ) as led:
        await led.sequence()  # a new ledger's first checkpoint creates a key file: its first line
    header = (tmp_path / "ok" / KEY_FILE_NAME).read_text(encoding="ascii").splitlines()[0]
    if content is None:
        body = "not base64!" if "base64" in reason else base64.b64encode(bytes(31)).decode()
        content = f"{header}\n{body}\n"
    _key_file(home, content)
    with pytest.raises(KeyFileError, match=reason):
        async with migrated_ledger(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", home=home):
            pass
    assert (home / KEY_FILE_NAME).read_text(encoding="ascii") == content  # left for the operator
