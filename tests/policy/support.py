"""Shared helpers for the policy-core tests."""

from __future__ import annotations

from typing import Any

from router.core import Catalog, Policy
from router.services.catalogs import bundled_catalog, bundled_policy_document


def example_policy(name: str) -> Policy:
    """One of the bundled example policies, validated against the bundled catalog."""
    return Policy.from_json(bundled_policy_document(name), bundled_catalog().schema)


def entry(entry_id: str, **extra: Any) -> dict[str, Any]:
    """A valid catalog entry document with overridable attributes (None removes one)."""
    base: dict[str, Any] = {
        "id": entry_id,
        "model": "m",
        "provider": "p",
        "region": "eu",
        "price_in": 1.0,
        "price_out": 2.0,
        "status": "active",
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def catalog_of(*entries: dict[str, Any], schema: dict[str, str] | None = None) -> Catalog:
    """A catalog from entry documents."""
    document: dict[str, Any] = {"name": "test", "entries": list(entries)}
    if schema is not None:
        document["schema"] = schema
    return Catalog.from_json(document)


def policy_of(*rules: object, **top: Any) -> dict[str, Any]:
    """A policy document with the given rules (tokens default to 1000 in / 100 out)."""
    return {"v": "sigma-pol/v1", "rules": list(rules), "tokens": {"in": 1000, "out": 100}, **top}
