"""Import LiteLLM's price map (`model_prices_and_context_window.json`) as routable endpoints.

The file is one JSON object: key → model spec. Only `mode: "chat"` entries become endpoints (the
gateway speaks chat completions); everything else is skipped and counted by reason. The mapping
rules are documented in docs/catalog.md; each is a small function here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

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

SAMPLE_SPEC = "sample_spec"
CHAT_MODES = frozenset({"chat"})

CAPABILITY_NAMES: Mapping[str, str] = {
    "supports_function_calling": "tools",
    "supports_vision": "vision",
    "supports_response_schema": "json",
    "supports_reasoning": "reasoning",
}
"""`supports_*` flags with a short capability name; any other `supports_<x>: true` becomes `<x>`."""

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
        CAPABILITY_NAMES.get(flag, flag.removeprefix("supports_"))
        for flag, value in spec.items()
        if flag.startswith("supports_") and value is True
    }
    return sorted(names)


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
    if "input_cost_per_token" not in spec or "output_cost_per_token" not in spec:
        missing = [p for p in ("input_cost_per_token", "output_cost_per_token") if p not in spec]
        summary.skip(f"chat without a flat per-token price (no {' / '.join(missing)})")
        return []
    prices: list[float] = []
    for name in ("input_cost_per_token", "output_cost_per_token"):
        raw = spec[name]
        value = price_decimal(raw) if not isinstance(raw, str) else None
        if value is None or value < 0:
            issues.add(f"{base}/{name}", raw, "a non-negative finite number (USD per token)")
        else:
            prices.append(per_million(value))
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
    common: dict[str, Any] = {
        "model": model,
        "provider": provider,
        "price_in": prices[0],
        "price_out": prices[1],
        "capabilities": capabilities(spec),
        "status": status(deprecation, as_of),
        "upstream_model": key,
    }
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
    for key, spec in document.items():
        if key == SAMPLE_SPEC:
            summary.skip("sample_spec (the file's own schema example)")
            continue
        if not isinstance(spec, dict):
            issues.add(pointer(key), spec, "a model spec object")
            continue
        if "alias_of" in spec:
            summary.skip("alias (alias_of: the target key is imported itself)")
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
    return resolve_duplicates(drafts, summary), summary
