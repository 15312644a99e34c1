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
from ledger._envelope import (
    _fast_canonical,
    _jcs_float,
    decode_attachment_digests,
    encode_attachment_digests,
)
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


@pytest.mark.parametrize(
    "value",
    [
        1e21,
        1e-7,
        -0.0,
        1.0,
        1e16,
        2**53 - 1,
        0.1,
        {"\U0001f600": 1, "\ue000": 2},
        {'a"1e5': 1.0},
        {"k": 'q"', "n": 1e21},
        {"x": "1.0", "d": "3e5" * 8},
        ["\x1f", "\u2028"],
    ],
)
def test_canonical_json_takes_the_jcs_path_where_python_differs(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)  # type: ignore[arg-type]


plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=6), children)
    ),
    max_leaves=16,
)


def _needs_jcs_path(value: object) -> bool:
    """An integer JCS refuses or a character outside the BMP anywhere in the value."""
    if isinstance(value, dict):
        return any(_needs_jcs_path(k) or _needs_jcs_path(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_needs_jcs_path(v) for v in value)
    if isinstance(value, str):
        return any(c > "\uffff" for c in value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53


@settings(max_examples=1500)
@given(plain_values)
def test_the_orjson_path_writes_exactly_rfc8785(value: object) -> None:
    fast = _fast_canonical(value)
    if _needs_jcs_path(value):
        assert fast is None
    else:
        assert fast == rfc8785.dumps(value)  # type: ignore[arg-type]


class _Colour(enum.Enum):
    RED = 1


class _Level(enum.IntEnum):
    LOW = 1


class _Text(str):
    pass


@settings(max_examples=3000)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_written_as_ecmascript_writes_them(value: float) -> None:
    assert _jcs_float(value) == rfc8785.dumps(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        1.6e-06,
        1e-06,
        1e-07,
        1.5e-07,
        0.000123,
        123.456,
        1e20,
        1.2345678901234567e20,
        1e21,
        1.5e21,
        -1e-300,
        5e-324,
        1.7976931348623157e308,
        -0.0,
        2.0**53,
        100.0,
    ],
)
def test_float_layout_at_every_boundary_of_ecmascript(value: float) -> None:
    assert _jcs_float(value) == rfc8785.dumps(value)  # type: ignore[arg-type]
    assert _fast_canonical({"x": [value]}) == rfc8785.dumps({"x": [value]})  # type: ignore[arg-type]


def test_a_decision_attempt_with_a_float_cost_takes_the_orjson_path() -> None:
    attempt = {"cost_usd": 1.6e-06, "latency_ms": 0.2875, "status": "ok", "tokens": [12, 3]}
    assert _fast_canonical(attempt) == rfc8785.dumps(attempt)  # type: ignore[arg-type]
    expected = b'{"cost_usd":0.0000016,"latency_ms":0.2875,"status":"ok","tokens":[12,3]}'
    assert _fast_canonical(attempt) == expected


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
def test_the_orjson_path_leaves_the_rest_to_the_jcs_path(value: object) -> None:
    """NaN and infinities, unsafe integers, types orjson serializes but JCS refuses (UUID, enums,
    fragments), subclasses and non-BMP keys: canonical_json answers as `rfc8785` does."""
    assert _fast_canonical(value) is None
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
