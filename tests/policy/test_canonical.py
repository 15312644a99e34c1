"""The canonical JSON writer is byte-identical to the `rfc8785` reference implementation (the
vectors and properties it shares with the ledger's writer: tests/test_canonical_json.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from router.core._canonical import canonical_bytes, extended_canonical_bytes
from router.services.catalogs import bundled_catalog

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_same_bytes_on_the_bundled_catalog() -> None:
    catalog = bundled_catalog().to_json()
    assert canonical_bytes(catalog) == rfc8785.dumps(catalog)


@pytest.mark.parametrize("value", [float("nan"), 2**53, {1: 2}, "\ud800", object()])
def test_rejects_what_the_reference_rejects(value: Any) -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        rfc8785.dumps(value)
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_bytes(value)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_extended_form_of_i_json_is_rfc_8785(value: Any) -> None:
    assert extended_canonical_bytes(value) == rfc8785.dumps(value)


beyond_i_json = st.recursive(
    st.integers(2**53, 2**70)
    | st.integers(-(2**70), -(2**53))
    | st.sampled_from([float("inf"), float("-inf")])
    | st.text(alphabet=st.characters(codec=None, categories=["Cs", "Ll"]), min_size=1),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(beyond_i_json)
def test_every_json_value_has_one_extended_form_that_is_json_again(value: Any) -> None:
    value = json.loads(json.dumps(value))  # as a parser gives it: adjacent surrogates paired
    raw = extended_canonical_bytes(value)
    raw.decode("utf-8")  # well-formed UTF-8: lone surrogates are escapes
    assert extended_canonical_bytes(json.loads(raw)) == raw


def test_the_extended_form_beyond_i_json() -> None:
    value = {"seed": 2**53 + 1, "t": 1e999, "u": -1e999, "\udc00": "\ud800x", "b": 1.5}
    assert extended_canonical_bytes(value) == (
        b'{"b":1.5,"seed":9007199254740993,"t":1e999,"u":-1e999,"\\udc00":"\\ud800x"}'
    )
