"""The canonical JSON writer is byte-identical to the `rfc8785` reference implementation (the
vectors and properties it shares with the ledger's writer: tests/test_canonical_json.py)."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785

from router.core._canonical import canonical_bytes
from router.services.catalogs import bundled_catalog


def test_same_bytes_on_the_bundled_catalog() -> None:
    catalog = bundled_catalog().to_json()
    assert canonical_bytes(catalog) == rfc8785.dumps(catalog)


@pytest.mark.parametrize("value", [float("nan"), 2**53, {1: 2}, "\ud800", object()])
def test_rejects_what_the_reference_rejects(value: Any) -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        rfc8785.dumps(value)
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_bytes(value)
