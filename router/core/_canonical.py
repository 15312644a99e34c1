"""Canonical JSON (RFC 8785 / JCS) and the digests computed over it."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import rfc8785

# JCS serializes numbers as IEEE-754 doubles: integers beyond ±(2**53 - 1) would lose precision.
MAX_SAFE_INTEGER = 2**53 - 1


# Python's JSON string encoder (ensure_ascii=False) escapes exactly what RFC 8785 escapes: `"`,
# `\\`, and U+0000..U+001F as \b \t \n \f \r or a lowercase \u00xx.
_encode_string = json.JSONEncoder(ensure_ascii=False).encode


def _write(value: Any, out: list[str]) -> None:
    kind = type(value)
    if kind is str:
        out.append(_encode_string(value))
    elif kind is dict:
        out.append("{")
        first = True
        for key in sorted(value, key=_utf16_key):
            if not first:
                out.append(",")
            first = False
            out.append(_encode_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif kind is list or kind is tuple:
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif kind is int and abs(value) <= MAX_SAFE_INTEGER:
        out.append(str(value))
    elif kind is float and 1e-4 <= abs(value) < 1e16:
        # Here Python's repr and ECMAScript's Number::toString both print the shortest
        # round-tripping digits in plain decimal notation; only "x.0" differs (JS prints "x").
        text = repr(value)
        out.append(text[:-2] if text.endswith(".0") else text)
    else:  # floats, out-of-range integers, anything unusual: the reference implementation decides
        out.append(rfc8785.dumps(value).decode("utf-8"))


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 canonical encoding of a JSON value (byte-identical to `rfc8785.dumps`, which
    remains the reference; this writer is faster on large catalogs)."""
    out: list[str] = []
    try:
        _write(value, out)
        return "".join(out).encode("utf-8")
    except (UnicodeEncodeError, AttributeError, TypeError):
        return rfc8785.dumps(value)  # raises the reference error (surrogates, non-string keys…)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _extended_string(text: str) -> str:
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", _encode_string(text))


def _write_extended(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_extended_string(value))
    elif isinstance(value, dict):
        out.append("{")
        ordered = sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        for i, key in enumerate(ordered):
            out.append("," if i else "")
            out.append(_extended_string(key) + ":")
            _write_extended(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            out.append("," if i else "")
            _write_extended(item, out)
        out.append("]")
    elif isinstance(value, bool) or value is None:
        out.append(json.dumps(value))
    elif isinstance(value, int):
        out.append(str(value))  # exact, beyond ±(2**53 - 1) too
    elif isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            raise ValueError("NaN is not a JSON number")
        out.append("1e999" if value > 0 else "-1e999")  # what overflows a double parses to ±inf
    else:
        out.append(rfc8785.dumps(value).decode("utf-8"))


def extended_canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of any JSON value a JSON parser can produce, beyond I-JSON too.

    Where RFC 8785 can carry the value (I-JSON: integers within ±(2⁵³ − 1), finite doubles,
    well-formed strings) the bytes are exactly `canonical_bytes`. Beyond it the same rules are
    extended: integers are written exactly, a number that overflows a double as `1e999` or
    `-1e999`, a lone surrogate as its `\\udxxx` escape (keys still sorted by UTF-16 code
    units). So every valid JSON document has one canonical form, and the form of an I-JSON
    document never changed."""
    try:
        return canonical_bytes(value)
    except (UnicodeEncodeError, ValueError, TypeError, rfc8785.CanonicalizationError):
        out: list[str] = []
        _write_extended(value, out)
        return "".join(out).encode("utf-8")


def sha256_hex(value: Any) -> str:
    """SHA-256 hex digest of the canonical encoding of a JSON value."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def is_number(value: object) -> bool:
    """A JSON number: int or float but not bool (bool is an int subclass in Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_problem(value: int | float) -> str | None:
    """Why a JSON number is not acceptable (non-finite, or an integer JCS cannot carry), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number (NaN and Infinity are not JSON)"
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        return f"an integer within ±{MAX_SAFE_INTEGER} (canonical JSON is IEEE-754)"
    return None


def canonical_number(value: int | float) -> int | float:
    """The one representation of a number: integral values as int, others as float; -0 is 0."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
        return int(value)
    return value


def describe(value: object) -> str:
    """A short JSON-ish description of a found value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'"{shown}"'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
