"""The signing key file's safety rules, and the canonical payload encoding."""

from __future__ import annotations

import collections
import enum
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

from ledger import KEY_FILE_NAME, InvalidEventError, KeyFileError, canonical_json
from ledger._format import decode_attachment_digests, encode_attachment_digests
from ledger._keyfile import create_seed, read_seed


def test_key_is_created_private_and_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert read_seed(home) is None
    assert not home.exists()  # reading creates nothing
    seed = create_seed(home)
    assert len(seed) == 32
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / KEY_FILE_NAME).stat().st_mode) == 0o600
    assert create_seed(home) == seed
    assert read_seed(home) == seed


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    create_seed(tmp_path)
    os.chmod(tmp_path / KEY_FILE_NAME, 0o644)
    with pytest.raises(KeyFileError, match="accessible to group or others"):
        read_seed(tmp_path)


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_text("hello\n")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not an unhardcoded signing key file"):
        read_seed(tmp_path)


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


def test_attachment_digest_list_round_trips_in_byte_order() -> None:
    digests = {"zeta": b"\x01" * 32, "body": b"\x02" * 32, "é": b"\x03" * 32}
    encoded = encode_attachment_digests(digests)
    assert encoded.startswith(b"\x00\x04body")
    assert decode_attachment_digests(encoded) == digests
    assert encode_attachment_digests({}) == b""
