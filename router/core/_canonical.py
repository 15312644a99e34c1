"""Canonical JSON (RFC 8785 / JCS) and the digests computed over it."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import rfc8785

# JCS serializes numbers as IEEE-754 doubles: integers beyond ±(2**53 - 1) would lose precision.
MAX_SAFE_INTEGER = 2**53 - 1


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 canonical encoding of a JSON value."""
    return rfc8785.dumps(value)


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
