"""Shared helpers for the catalog importer tests: fixture paths and one-call imports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from router.core import Catalog, CatalogEntry
from router.services.catalogs import (
    ImportResult,
    Overlay,
    Source,
    import_litellm_document,
    import_openrouter_document,
    parse_overlay,
)

DATA = Path(__file__).resolve().parent / "data"
LITELLM = DATA / "litellm.json"
OPENROUTER = DATA / "openrouter.json"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_OVERLAY = ROOT / "docs" / "examples" / "overlay.yaml"
AS_OF = dt.date(2026, 1, 1)


def litellm_fixture() -> dict[str, Any]:
    """The LiteLLM fixture, parsed (a fresh copy each call)."""
    document: dict[str, Any] = json.loads(LITELLM.read_text(encoding="utf-8"))
    return document


def source(kind: str = "litellm", file: str = "prices.json") -> Source:
    return Source(kind, file, "ab" * 32)


def overlay(document: dict[str, Any], file: str = "ov.yaml") -> Overlay:
    return parse_overlay(document, file, "cd" * 32, file.rsplit(".", 1)[0])


def import_litellm(
    document: object, *overlays: Overlay, as_of: dt.date = AS_OF, file: str = "prices.json"
) -> ImportResult:
    return import_litellm_document(
        document, source("litellm", file), as_of=as_of, overlays=overlays
    )


def import_openrouter(document: object, *overlays: Overlay, as_of: dt.date = AS_OF) -> ImportResult:
    return import_openrouter_document(
        document, source("openrouter", "models.json"), as_of=as_of, overlays=overlays
    )


def only(spec_key: str, spec: dict[str, Any], as_of: dt.date = AS_OF) -> Catalog:
    """The catalog of a one-entry LiteLLM document."""
    return import_litellm({spec_key: spec}, as_of=as_of).catalog


def chat(
    provider: str, price_in: float = 1e-06, price_out: float = 2e-06, **extra: Any
) -> dict[str, Any]:
    """A minimal chat-mode LiteLLM spec."""
    return {
        "litellm_provider": provider,
        "mode": "chat",
        "input_cost_per_token": price_in,
        "output_cost_per_token": price_out,
        **extra,
    }


def single(catalog: Catalog) -> CatalogEntry:
    assert len(catalog.entries) == 1, [e.id for e in catalog.entries]
    return catalog.entries[0]
