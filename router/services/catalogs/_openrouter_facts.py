"""Facts OpenRouter enforces at request time, from two documented responses of its API.

- **Zero data retention.** `GET /api/v1/endpoints/zdr` lists every endpoint with a zero data
  retention policy (`{"data": [PublicEndpoint]}`: `model_id` is the model's permaslug, the
  listing's `canonical_slug`; `tag` names the upstream provider endpoint). A standard entry whose
  model has at least one such endpoint gets `no_log: true` and `zdr_providers` (the tags); one
  without gets `no_log: false`. The fact holds *at request time*: a policy that requires `no_log`
  makes the gateway send `provider.zdr: true` and `data_collection: "deny"`, so OpenRouter serves
  the call from one of those endpoints or refuses it. A variant (`:free`, `:batch`, …) shares its
  permaslug with the standard model but is served by other endpoints, so it gets no fact either
  way (a `no_log` rule fails closed on it).
- **EU in-region routing.** `GET /api/v1/models?region=eu` is the model listing filtered to models
  with endpoints in OpenRouter's EU data region. Each becomes an extra entry in region `eu`
  (`openrouter/<model>@eu`), priced as that listing states; the gateway sends it to OpenRouter's
  EU base URL (`https://eu.openrouter.ai/api/v1`), which routes only to endpoints in the region
  and fails rather than leaving it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from router.services.catalogs._imports import (
    CatalogImportError,
    Draft,
    ImportSummary,
    Issues,
    Source,
    entry_id,
    pointer,
)
from router.services.catalogs._openrouter import PROVIDER, map_openrouter

ZDR_URL = "https://openrouter.ai/api/v1/endpoints/zdr"
"""Where the zero-data-retention endpoint list comes from (`no_log_source` of the entries)."""
EU_MODELS_URL = "https://openrouter.ai/api/v1/models?region=eu"
"""Where the EU listing comes from (`region_source` of the `@eu` entries)."""
EU_REGION = "eu"
STANDARD = "standard"

ZDR_KIND = "openrouter_zdr"
EU_KIND = "openrouter_eu"


def parse_zdr_endpoints(document: object, source: Source) -> dict[str, list[str]]:
    """A parsed `/api/v1/endpoints/zdr` response → model permaslug → sorted endpoint tags.
    Raise `CatalogImportError` listing every problem with its pointer into the file."""
    issues = Issues(source.file)
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        issues.add("/data" if isinstance(document, dict) else "", data, "a data list of endpoints")
        raise CatalogImportError(source.file, issues.items)
    tags: dict[str, set[str]] = {}
    for i, endpoint in enumerate(data):
        base = pointer("data", i)
        if not isinstance(endpoint, dict):
            issues.add(base, endpoint, "an endpoint object")
            continue
        model = endpoint.get("model_id")
        tag = endpoint.get("tag")
        if not isinstance(model, str) or not model:
            issues.add(f"{base}/model_id", model, "the model's permaslug")
        if not isinstance(tag, str) or not tag:
            issues.add(f"{base}/tag", tag, "the endpoint's provider tag")
        if isinstance(model, str) and model and isinstance(tag, str) and tag:
            tags.setdefault(model, set()).add(tag)
    issues.raise_if_any()
    return {model: sorted(found) for model, found in sorted(tags.items())}


def _permaslugs(listing: object) -> dict[str, str]:
    """Listing id → permaslug (`canonical_slug`, else the id itself)."""
    data = listing.get("data") if isinstance(listing, dict) else None
    slugs: dict[str, str] = {}
    for item in data if isinstance(data, list) else ():
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            canonical = item.get("canonical_slug")
            slugs[item["id"]] = (
                canonical if isinstance(canonical, str) and canonical else item["id"]
            )
    return slugs


def add_zdr_facts(
    drafts: Sequence[Draft],
    listing: object,
    zdr: Mapping[str, Sequence[str]],
    source: Source,
    overrides: dict[str, dict[str, str]],
) -> None:
    """Set `no_log`, `no_log_source` and (when true) `zdr_providers` on the standard entries of
    region `unspecified`; record the ZDR file as their provenance in `overrides`."""
    slugs = _permaslugs(listing)
    for draft in drafts:
        attrs = draft.attributes
        if attrs.get("variant") != STANDARD or attrs.get("region") == EU_REGION:
            continue
        model = str(attrs["model"])
        tags = zdr.get(slugs.get(model, model)) or zdr.get(model)
        attrs["no_log"] = bool(tags)
        attrs["no_log_source"] = ZDR_URL
        record = overrides.setdefault(draft.id, {})
        record.update(dict.fromkeys(("no_log", "no_log_source"), source.tag))
        if tags:
            attrs["zdr_providers"] = list(tags)
            record["zdr_providers"] = source.tag


def eu_drafts(
    document: object,
    source: Source,
    *,
    as_of: dt.date,
    overrides: dict[str, dict[str, str]],
) -> tuple[list[Draft], ImportSummary]:
    """The entries of an EU listing (`/api/v1/models?region=eu`), each in region `eu` with
    `region_source`; every attribute's provenance is the EU file."""
    drafts, summary = map_openrouter(document, source, as_of=as_of)
    for draft in drafts:
        attrs = draft.attributes
        attrs["region"] = EU_REGION
        attrs["region_source"] = EU_MODELS_URL
        attrs["id"] = entry_id(PROVIDER, str(attrs["model"]), EU_REGION)
        draft.attributes = dict(sorted(attrs.items()))
        overrides[draft.id] = dict.fromkeys(draft.attributes, source.tag)
    return drafts, summary


def merge_eu(
    drafts: list[Draft], eu: Sequence[Draft], summary: ImportSummary, eu_summary: ImportSummary
) -> list[Draft]:
    """The listing's drafts plus the EU ones (sorted by id); the EU import's skips and warnings
    are added to the summary, labelled."""
    for reason, count in eu_summary.skipped.items():
        summary.skipped[f"EU listing: {reason}"] += count
    summary.warnings.extend(f"EU listing: {w}" for w in eu_summary.warnings)
    summary.merged_identical += eu_summary.merged_identical
    return sorted([*drafts, *eu], key=lambda d: d.id)
