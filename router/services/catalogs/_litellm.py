"""Import LiteLLM's price map (`model_prices_and_context_window.json`) as routable endpoints.

The file is one JSON object: key → model spec. Only `mode: "chat"` entries become endpoints (the
gateway speaks chat completions); everything else is skipped and counted by reason. The mapping
rules are documented in docs/catalog.md; each is a small function here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from router.core import PRICE_TIERS, UNKNOWN_PRICE
from router.services.catalogs._imports import (
    UNSPECIFIED_REGION,
    CatalogImportError,
    Draft,
    ImportSummary,
    Issues,
    Source,
    entry_id,
    is_whole,
    per_million,
    pointer,
    price_decimal,
    resolve_duplicates,
)
from router.services.catalogs._regions import (
    AZURE_DATA_ZONES,
    BEDROCK_PROFILES,
    GLOBAL,
    location_region,
)
from router.services.catalogs._vocabulary import (
    CLOUD_HOSTING,
    LITELLM_CAPABILITIES,
    litellm_hosting,
    litellm_variant,
    litellm_vendor,
)

SAMPLE_SPEC = "sample_spec"
CHAT_MODES = frozenset({"chat"})

CAPABILITY_NAMES: Mapping[str, str] = LITELLM_CAPABILITIES
"""`supports_*` flags → canonical capability names; any other `supports_<x>: true` becomes `<x>`."""

_TIER_KEY = re.compile(
    r"(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost)_above_(\d+)k_tokens"
)
_TIER_PRICE = {
    "input_cost_per_token": "price_in",
    "output_cost_per_token": "price_out",
    "cache_read_input_token_cost": "price_cached_in",
}

AZURE_PROVIDERS = frozenset({"azure", "azure_ai"})
BEDROCK_PROVIDERS = frozenset({"bedrock", "bedrock_mantle"})


def normalize_provider(litellm_provider: str) -> str:
    """LiteLLM provider → catalog provider: `vertex_ai-<family>` → `vertex_ai` (pricing families,
    not APIs), `bedrock_converse` → `bedrock` (same service, another call path); else unchanged."""
    if litellm_provider.startswith("vertex_ai-"):
        return "vertex_ai"
    if litellm_provider == "bedrock_converse":
        return "bedrock"
    return litellm_provider


def parse_key(key: str, litellm_provider: str, provider: str) -> tuple[str, str | None, str | None]:
    """Split a LiteLLM key into (model, region, location) — region/location None when the key
    encodes none. Rules, in order:

    1. a leading `<provider>/` segment is dropped (`vertex_ai/claude-…` → `claude-…`);
    2. Azure data zones as first segment: `azure/eu/gpt-4o` → region `eu`;
    3. a cloud location as first segment: `bedrock/eu-west-1/…` → location `eu-west-1`, region `eu`;
    4. Bedrock inference-profile prefixes on the model id: `eu.anthropic.claude-…` → region `eu`.
    """
    segments = key.split("/")
    if len(segments) > 1 and segments[0] in (litellm_provider, provider):
        segments = segments[1:]
    region: str | None = None
    location: str | None = None
    if len(segments) > 1:
        first = segments[0]
        if provider in AZURE_PROVIDERS and first in AZURE_DATA_ZONES:
            region = AZURE_DATA_ZONES[first]
            segments = segments[1:]
        elif first != GLOBAL and (found := location_region(first)) is not None:
            region, location = found, first
            segments = segments[1:]
    if provider in BEDROCK_PROVIDERS and "." in segments[-1]:
        prefix, rest = segments[-1].split(".", 1)
        if prefix in BEDROCK_PROFILES and region is None:
            region = prefix
            segments[-1] = rest
    return "/".join(segments), region, location


def capabilities(spec: Mapping[str, Any]) -> list[str]:
    """`supports_*: true` flags → sorted capability names (see `CAPABILITY_NAMES`)."""
    names = {
        LITELLM_CAPABILITIES.get(flag, flag.removeprefix("supports_"))
        for flag, value in spec.items()
        if flag.startswith("supports_") and value is True
    }
    return sorted(names)


def price_source(prices: list[float], spec: Mapping[str, Any], hosting: str, variant: str) -> str:
    """`priced`, or for 0 / 0: `free` when something backs it (a self-hosted runtime, a free
    variant, or a spec citing its `source`), else `unknown` (a 0 the file writes without
    evidence is a placeholder)."""
    if any(prices):
        return "priced"
    if hosting != CLOUD_HOSTING or variant == "free" or isinstance(spec.get("source"), str):
        return "free"
    return UNKNOWN_PRICE


def _price(spec: Mapping[str, Any], name: str, base: str, issues: Issues) -> float | None:
    raw = spec[name]
    value = price_decimal(raw) if not isinstance(raw, str) else None
    if value is None or value < 0:
        issues.add(f"{base}/{name}", raw, "a non-negative finite number (USD per token)")
        return None
    return per_million(value)


def _above_tiers(spec: Mapping[str, Any], base: str, issues: Issues) -> list[dict[str, Any]]:
    """`<price>_above_<N>k_tokens` keys → tiers above N × 1000 input tokens (the plain keys
    only: `_priority`, `_batches`, `_flex` prices are other services, not tiers)."""
    by_threshold: dict[int, dict[str, Any]] = {}
    for name in spec:
        if "_above_" not in name:  # cheap filter: most keys are not tier prices
            continue
        match = _TIER_KEY.fullmatch(name)
        if match is None:
            continue
        value = _price(spec, name, base, issues)
        if value is None:
            continue
        above = int(match.group(2)) * 1000
        tier = by_threshold.setdefault(above, {"above_tokens_in": above})
        tier[_TIER_PRICE[match.group(1)]] = value
    return [by_threshold[k] for k in sorted(by_threshold)]


def _range_tiers(
    raw: object, base: str, issues: Issues
) -> tuple[tuple[float, float] | None, list[dict[str, Any]]]:
    """`tiered_pricing: [{range: [lo, hi], input_cost_per_token, output_cost_per_token}, …]` →
    (the prices of the range starting at 0, a tier above `lo` for each other range)."""
    if not isinstance(raw, list) or not raw:
        issues.add(base, raw, "a list of priced token ranges")
        return None, []
    first: tuple[float, float] | None = None
    tiers: list[dict[str, Any]] = []
    before = len(issues.items)
    for i, item in enumerate(raw):
        where = f"{base}/{i}"
        bounds = item.get("range") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(bounds, list)
            or len(bounds) != 2
            or not all(is_whole(b) for b in bounds)
        ):
            issues.add(where, item, "a range [from, to] in tokens with its per-token prices")
            continue
        prices = [
            _price(item, name, where, issues) if name in item else None
            for name in ("input_cost_per_token", "output_cost_per_token")
        ]
        if None in prices:
            if all(name in item for name in ("input_cost_per_token", "output_cost_per_token")):
                continue
            issues.add(where, item, "input_cost_per_token and output_cost_per_token")
            continue
        p_in, p_out = float(prices[0] or 0), float(prices[1] or 0)
        low = int(bounds[0])
        if low == 0:
            first = (p_in, p_out)
        else:
            tiers.append({"above_tokens_in": low, "price_in": p_in, "price_out": p_out})
    if first is None and len(issues.items) == before:
        issues.add(base, raw, "a range starting at 0 tokens")
    return first, tiers


def _merged_tiers(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One tier per threshold (a later one fills what an earlier one left out)."""
    merged: dict[int, dict[str, Any]] = {}
    for tier in tiers:
        merged.setdefault(tier["above_tokens_in"], {}).update(tier)
    return [merged[k] for k in sorted(merged)]


def status(deprecation_date: dt.date | None, as_of: dt.date) -> str:
    """`deprecated` from the deprecation date on (inclusive), else `active`. `as_of` is explicit:
    the mapping reads no clock."""
    return "deprecated" if deprecation_date is not None and deprecation_date <= as_of else "active"


def _token_count(spec: Mapping[str, Any], name: str, base: str, issues: Issues) -> int | None:
    value = spec.get(name)
    if value is None:
        return None
    if not is_whole(value):
        issues.add(f"{base}/{name}", value, "a non-negative whole number of tokens")
        return None
    return int(value)


def _endpoints(
    key: str,
    spec: Mapping[str, Any],
    region: str | None,
    location: str | None,
    base: str,
    issues: Issues,
    summary: ImportSummary,
) -> list[tuple[str, str | None]]:
    """(region, location) pairs: the key's own, else one per `supported_regions` location, else
    the unspecified region."""
    if region is not None:
        return [(region, location)]
    listed = spec.get("supported_regions")
    if listed is None:
        return [(UNSPECIFIED_REGION, None)]
    if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
        issues.add(f"{base}/supported_regions", listed, "a list of cloud location names")
        return []
    pairs: list[tuple[str, str | None]] = []
    for loc in sorted(set(listed)):
        found = location_region(loc)
        if found is None:
            summary.warnings.append(
                f"{key}: supported_regions names unknown location {loc!r}; "
                "no endpoint created for it"
            )
        elif found == GLOBAL:
            pairs.append((GLOBAL, None))
        else:
            pairs.append((found, loc))
    return pairs


def map_entry(
    key: str, spec: Mapping[str, Any], as_of: dt.date, issues: Issues, summary: ImportSummary
) -> list[Draft]:
    """Map one chat-mode spec to its endpoints (validation problems go to `issues`)."""
    base = pointer(key)
    raw_provider = spec.get("litellm_provider")
    if not isinstance(raw_provider, str) or not raw_provider:
        issues.add(f"{base}/litellm_provider", raw_provider, "a provider name")
        return []
    outputs = spec.get("supported_output_modalities")
    if isinstance(outputs, list) and outputs and "text" not in outputs:
        summary.skip(
            f"no text output (supported_output_modalities: {', '.join(map(str, outputs))})"
        )
        return []
    tiered = spec.get("tiered_pricing")
    flat = "input_cost_per_token" in spec and "output_cost_per_token" in spec
    if not flat and tiered is None:
        missing = [p for p in ("input_cost_per_token", "output_cost_per_token") if p not in spec]
        summary.skip(f"chat without a per-token price (no {' / '.join(missing)})")
        return []
    prices: list[float] = []
    tiers: list[dict[str, Any]] = []
    if flat:
        for name in ("input_cost_per_token", "output_cost_per_token"):
            value = _price(spec, name, base, issues)
            if value is not None:
                prices.append(value)
        tiers = _above_tiers(spec, base, issues)
    if tiered is not None:
        base_prices, range_tiers = _range_tiers(tiered, f"{base}/tiered_pricing", issues)
        if not flat and base_prices is not None:
            prices = list(base_prices)
        tiers = sorted(tiers + range_tiers, key=lambda t: t["above_tokens_in"])
    cached_price = (
        _price(spec, "cache_read_input_token_cost", base, issues)
        if "cache_read_input_token_cost" in spec
        else None
    )
    context_window = _token_count(spec, "max_input_tokens", base, issues)
    max_output = _token_count(spec, "max_output_tokens", base, issues)
    for flag, value in spec.items():
        if flag.startswith("supports_") and not isinstance(value, bool):
            issues.add(f"{base}/{flag}", value, "true or false")
    deprecation: dt.date | None = None
    raw_date = spec.get("deprecation_date")
    if raw_date is not None:
        try:
            if not isinstance(raw_date, str) or len(raw_date) != 10:
                raise ValueError
            deprecation = dt.date.fromisoformat(raw_date)
        except ValueError:
            issues.add(f"{base}/deprecation_date", raw_date, "a date YYYY-MM-DD")
    provider = normalize_provider(raw_provider)
    model, region, location = parse_key(key, raw_provider, provider)
    endpoints = _endpoints(key, spec, region, location, base, issues, summary)
    if len(prices) != 2:
        return []
    hosting = litellm_hosting(raw_provider, model)
    variant = litellm_variant(model)
    source = price_source(prices, spec, hosting, variant)
    common: dict[str, Any] = {
        "model": model,
        "provider": provider,
        "price_source": source,
        "capabilities": capabilities(spec),
        "status": status(deprecation, as_of),
        "upstream_model": key,
        "variant": variant,
        "hosting": hosting,
    }
    if source != UNKNOWN_PRICE:
        common["price_in"], common["price_out"] = prices
        if cached_price is not None:
            common["price_cached_in"] = cached_price
        if tiers:
            common[PRICE_TIERS] = _merged_tiers(tiers)
    vendor = litellm_vendor(raw_provider, model)
    if vendor is not None:
        common["vendor"] = vendor
    if context_window is not None:
        common["context_window"] = context_window
    if max_output is not None:
        common["max_output_tokens"] = max_output
    if deprecation is not None:
        common["deprecation_date"] = deprecation.isoformat()
    drafts = []
    for reg, loc in endpoints:
        attrs = {"id": entry_id(provider, model, loc or reg), **common, "region": reg}
        if loc is not None:
            attrs["location"] = loc
        drafts.append(Draft(key, dict(sorted(attrs.items()))))
    return drafts


def map_litellm(
    document: object, source: Source, *, as_of: dt.date
) -> tuple[list[Draft], ImportSummary]:
    """Map a parsed LiteLLM price map to draft entries (one per endpoint, duplicates resolved) and
    the summary; raise `CatalogImportError` listing every problem with its pointer into the file."""
    issues = Issues(source.file)
    summary = ImportSummary(source=f"{source.file} (litellm, sha256 {source.sha256[:12]})")
    if not isinstance(document, dict):
        issues.add("", document, "an object mapping model keys to specs")
        raise CatalogImportError(source.file, issues.items)
    drafts: list[Draft] = []
    aliases: dict[str, list[str]] = {}
    for key, spec in document.items():
        if key == SAMPLE_SPEC:
            summary.skip("sample_spec (the file's own schema example)")
            continue
        if not isinstance(spec, dict):
            issues.add(pointer(key), spec, "a model spec object")
            continue
        if "alias_of" in spec:
            target = spec["alias_of"]
            if not isinstance(target, str) or not target:
                issues.add(pointer(key, "alias_of"), target, "the key of the aliased model")
                continue
            aliases.setdefault(target, []).append(key)
            summary.skip("alias (alias_of: the target is imported, naming the alias)")
            continue
        mode = spec.get("mode")
        if mode is None:
            summary.skip("no mode")
            continue
        if not isinstance(mode, str):
            issues.add(pointer(key, "mode"), mode, "a mode name")
            continue
        if mode not in CHAT_MODES:
            summary.skip(f"mode {mode} (not chat)")
            continue
        drafts.extend(map_entry(key, spec, as_of, issues, summary))
    issues.raise_if_any()
    ids_of: dict[str, list[str]] = {}
    for draft in drafts:
        ids_of.setdefault(draft.key, []).append(draft.id)
    kept = resolve_duplicates(drafts, summary)
    by_id = {draft.id: draft for draft in kept}
    for target, names in sorted(aliases.items()):
        for ident in ids_of.get(target, ()):
            # The alias resolves to this entry (its vendor, model, prices); the name is kept.
            attributes = by_id[ident].attributes
            attributes["alias"] = min([*names, attributes.get("alias", names[0])])
    return kept, summary
