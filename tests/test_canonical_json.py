"""The two canonical JSON (RFC 8785) writers — the ledger's, for event payloads, and the policy
core's, for fingerprints and catalog digests — are proven identical by one set of test vectors
(`canonical_vectors.json`, each checked against the `rfc8785` reference too) and by one property:
on any JSON value, both write exactly what `rfc8785` writes. The two packages sit side by side on
the lowest floor and may not import each other, so each keeps its own writer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import canonical_json
from router.core._canonical import canonical_bytes

VECTORS = json.loads((Path(__file__).parent / "canonical_vectors.json").read_text("utf-8"))
WRITERS: dict[str, Callable[[Any], bytes]] = {
    "ledger.canonical_json": canonical_json,
    "router.core.canonical_bytes": canonical_bytes,
}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_each_writer_writes_each_vector_exactly(writer: str, vector: dict[str, Any]) -> None:
    expected = vector["canonical"].encode("utf-8")
    assert rfc8785.dumps(vector["value"]) == expected
    assert WRITERS[writer](vector["value"]) == expected
    # Inside an object as the ledger stores payloads, the bytes are the same.
    assert WRITERS[writer]({"v": vector["value"]}) == b'{"v":' + expected + b"}"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=16,
)


@settings(max_examples=1500, deadline=None)
@given(json_values)
def test_both_writers_write_what_rfc8785_writes(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return  # what each package does with a value JCS refuses: its own tests
    assert canonical_json(value) == expected
    assert canonical_bytes(value) == expected


@settings(max_examples=1500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.floats(1e-7, 1e22))
def test_both_writers_lay_out_floats_as_ecmascript(value: float) -> None:
    expected = rfc8785.dumps(value)
    assert canonical_json(value) == expected
    assert canonical_bytes(value) == expected
