"""The signing key file's safety rules, and the canonical payload encoding."""

from __future__ import annotations

import collections
import enum
import hashlib
import math
import os
import stat
import uuid
from pathlib import Path

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import KEY_FILE_NAME, InvalidEventError, KeyFileError, NewEvent, canonical_json
from unhardcoded.db import migrated_ledger


async def test_key_is_created_private_and_reused(tmp_path: Path) -> None:
    home, url = tmp_path / "home", f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    async with migrated_ledger(url, home=home) as led:
        assert not home.exists()  # opening creates nothing
        key = await led.verifier_key()  # a ledger that never signed: the home's key, created
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / KEY_FILE_NAME).stat().st_mode) == 0o600
    async with migrated_ledger(url, home=home) as led:
        assert led.public_key() == key == await led.verifier_key()


async def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    async with migrated_ledger(url, home=tmp_path) as led:
        await led.verifier_key()
    os.chmod(tmp_path / KEY_FILE_NAME, 0o644)
    with pytest.raises(KeyFileError, match="accessible to group or others"):
        async with migrated_ledger(url, home=tmp_path):
            pass


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def _answers_as_rfc8785(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)  # type: ignore[arg-type]
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        with pytest.raises(InvalidEventError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@settings(max_examples=400)
@given(json_values)
def test_canonical_json_is_rfc8785(value: object) -> None:
    _answers_as_rfc8785(value)


class _Colour(enum.Enum):
    RED = 1


class _Level(enum.IntEnum):
    LOW = 1


class _Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {"x": math.nan},
        [math.inf],
        {"x": 2**53},
        [-(2**53)],
        {"x": uuid.UUID(int=1)},
        {"x": _Colour.RED},
        {"x": _Level.LOW},
        {"x": _Text("a")},
        {_Text("k"): 1},
        {"x": collections.OrderedDict(a=1)},
        {"x": orjson.Fragment(b"[1]")},
        {"\U0001f600": 1, "\ue000": 2},
        {"x": "\ud800"},
        {"x": b"bytes"},
    ],
)
def test_canonical_json_answers_as_rfc8785_on_what_a_fast_writer_gets_wrong(value: object) -> None:
    """NaN and infinities, unsafe integers, types other JSON writers serialize but JCS refuses
    (UUID, enums, fragments), subclasses and non-BMP keys: the bytes or the refusal of `rfc8785`.
    (Byte vectors shared with the policy core: tests/test_canonical_json.py.)"""
    _answers_as_rfc8785(value)


def test_canonical_json_refuses_what_json_cannot_say() -> None:
    with pytest.raises(InvalidEventError, match="canonical JSON"):
        canonical_json({"x": object()})
    with pytest.raises(InvalidEventError, match="canonical JSON"):
        canonical_json({"x": 2**60})


async def test_attachment_digests_enter_the_leaf_in_byte_order(tmp_path: Path) -> None:
    bodies = {"zeta": b"z", "body": b"b", "\u00e9": b"e"}
    digests = {name: hashlib.sha256(body).digest() for name, body in bodies.items()}
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    async with migrated_ledger(url, home=tmp_path) as led:
        (written,) = await led.append(NewEvent("T", "s", {}, attachments=bodies))
        (plain,) = await led.append(NewEvent("T", "s", {}))
        read = await led.get(written.event_id)
    assert read.attachment_digests == written.attachment_digests == digests
    # u32 length, then u16 length ‖ name ‖ digest per name in UTF-8 byte order (docs/ledger.md)
    listed = b"".join(
        len(raw).to_bytes(2, "big") + raw + digests[raw.decode()]
        for raw in sorted(name.encode() for name in bodies)
    )
    assert listed.startswith(b"\x00\x04body")
    assert read.leaf_data().endswith(len(listed).to_bytes(4, "big") + listed)
    assert plain.leaf_data().endswith(b"s" + bytes(4))  # no attachments: a zero length
