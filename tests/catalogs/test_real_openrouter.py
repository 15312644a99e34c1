"""A real OpenRouter `GET /api/v1/models` response (tests/catalogs/data/real, captured on
2026-01-05, 351 models): every model imported or skipped for a counted reason, every price the
file's price, one vocabulary, the ZDR join on real permaslugs, and a sync from a loopback mirror
serving it."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal
from functools import cache
from typing import Any

from router.core import Catalog
from router.services.catalogs import (
    ImportResult,
    Published,
    Source,
    import_openrouter_document,
    load_overlay,
    sync_catalog,
)
from tests.catalogs.support import DATA
from tests.catalogs.test_sync import Files, server

__all__ = ["server"]

REAL = DATA / "real" / "openrouter-models-2026-01-05.json.gz"
ZDR = DATA / "openrouter-zdr.json"
EU = DATA / "openrouter-eu.json"
FACTS = DATA.parents[2] / "router" / "data" / "overlays" / "public-facts.yaml"
AS_OF = dt.date(2026, 12, 7)


@cache
def real_bytes() -> bytes:
    """The captured response, as captured."""
    return gzip.decompress(REAL.read_bytes())


def models() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(real_bytes())["data"]
    return data


@cache
def imported(with_facts: bool = False) -> ImportResult:
    """The real listing alone, or with the public-facts overlay (what the winners table uses)."""
    source = Source.of_bytes("openrouter", "models.json", real_bytes())
    overlays = [load_overlay(FACTS)] if with_facts else []
    return import_openrouter_document(
        json.loads(real_bytes()), source, as_of=AS_OF, overlays=overlays
    )


def per_million(text: str) -> float:
    """Independent reading: the string the file wrote, shifted 6 places, 10 significant digits."""
    return float(format(Decimal(text).scaleb(6), ".10g"))


def test_every_model_is_imported_or_skipped_for_a_counted_reason() -> None:
    listed = models()
    result = imported()
    assert len(listed) == 351
    variable = {m["id"] for m in listed if m["pricing"]["prompt"] == "-1"}
    assert variable == {"openrouter/auto", "openrouter/bodybuilder"}
    assert {e.id for e in result.catalog} == {
        f"openrouter/{m['id']}@unspecified" for m in listed if m["id"] not in variable
    }
    assert result.summary.imported == 349
    assert dict(result.summary.skipped) == {'variable price ("-1": decided per request)': 2}
    assert result.summary.warnings == []


def test_every_price_is_the_files_price() -> None:
    catalog = imported().catalog
    free = 0
    for model in models():
        entry_id = f"openrouter/{model['id']}@unspecified"
        if entry_id not in catalog:
            continue
        entry = catalog[entry_id]
        pricing = model["pricing"]
        assert entry.get("price_in") == per_million(pricing["prompt"]), entry_id
        assert entry.get("price_out") == per_million(pricing["completion"]), entry_id
        cached = pricing.get("input_cache_read")
        assert entry.get("price_cached_in") == (None if cached is None else per_million(cached))
        assert ("prompt_caching" in (entry.get("capabilities") or ())) == (cached is not None)
        zero = pricing["prompt"] == "0" and pricing["completion"] == "0"
        # every zero-priced model of this listing is a `:free` variant, which backs the zero
        assert entry.get("price_source") == ("free" if zero else "priced"), entry_id
        assert (entry.get("variant") == "free") == model["id"].endswith(":free"), entry_id
        free += zero
        assert entry.get("context_window") == model["context_length"]
    assert free == 31


def test_one_vocabulary_on_the_real_listing() -> None:
    catalog = imported().catalog
    vendors = {str(e.get("model")).split("/")[0]: e.get("vendor") for e in catalog}
    assert vendors["x-ai"] == "xai"
    assert vendors["mistralai"] == "mistral"
    assert vendors["meta-llama"] == "meta"
    assert vendors["moonshotai"] == "moonshot"
    assert vendors["z-ai"] == "zai"
    assert vendors["thudm"] == "zai"
    assert vendors["ibm-granite"] == "ibm-granite"  # an author the table does not know: as written
    for model in models():
        entry_id = f"openrouter/{model['id']}@unspecified"
        if entry_id not in catalog:
            continue
        capabilities = catalog[entry_id].get("capabilities") or ()
        assert ("tools" in capabilities) == ("tools" in model["supported_parameters"]), entry_id
        vision = "image" in model["architecture"]["input_modalities"]
        assert ("vision" in capabilities) == vision, entry_id


def test_the_zdr_list_joins_the_real_listing_on_its_permaslugs() -> None:
    """The ZDR list names models by permaslug (`canonical_slug`), which differs from the id for
    most real models: `anthropic/claude-sonnet-4.5` is `anthropic/claude-4.5-sonnet-20250929`."""
    listed = {m["id"]: m["canonical_slug"] for m in models()}
    assert listed["anthropic/claude-sonnet-4.5"] == "anthropic/claude-4.5-sonnet-20250929"
    result = import_openrouter_document(
        json.loads(real_bytes()),
        Source.of_bytes("openrouter", "models.json", real_bytes()),
        as_of=AS_OF,
        zdr=(json.loads(ZDR.read_bytes()), Source.of_bytes("openrouter_zdr", "zdr", b"z")),
    )
    no_log = {e.id: e.get("zdr_providers") for e in result.catalog if e.get("no_log") is True}
    assert no_log == {
        "openrouter/anthropic/claude-sonnet-4.5@unspecified": ("amazon-bedrock", "google-vertex"),
        "openrouter/google/gemini-2.5-pro@unspecified": ("google-vertex",),
        "openrouter/meta-llama/llama-3.3-70b-instruct@unspecified": ("deepinfra/turbo",),
        "openrouter/openai/gpt-4o@unspecified": ("azure",),
    }
    # `openai/gpt-4o:extended` shares the permaslug `openai/gpt-4o`, but other endpoints serve
    # a variant: it gets no fact either way
    assert listed["openai/gpt-4o:extended"] == "openai/gpt-4o"
    extended = result.catalog["openrouter/openai/gpt-4o:extended@unspecified"]
    assert extended.get("no_log") is None


async def test_a_sync_of_the_real_listing_from_a_loopback_mirror(
    server: tuple[str, Files],
) -> None:
    base, files = server
    files.served["/api/v1/models"] = (200, real_bytes())
    files.served["/api/v1/endpoints/zdr"] = (200, ZDR.read_bytes())
    files.served["/api/v1/models?region=eu"] = (200, EU.read_bytes())
    published: list[Catalog] = []

    async def publish(catalog: Catalog) -> Published:
        known = catalog.version in {c.version for c in published}
        published.append(catalog)
        return Published(catalog.version, not known)

    url = f"{base}/api/v1/models"
    first = await sync_catalog("openrouter", publish, as_of=AS_OF, url=url)
    again = await sync_catalog("openrouter", publish, as_of=AS_OF, url=url)
    assert first.published.created
    assert again.published == Published(first.published.version, False)
    # 349 from the listing, 4 from the EU listing
    assert len(first.result.catalog.entries) == 353
    assert first.health.to_json()["counts"]["free_variant"] == 31
