"""Import OpenRouter's model list (the JSON of `GET https://openrouter.ai/api/v1/models`).

Each `data[]` item is one model reachable through OpenRouter's single API: provider `openrouter`,
model = the OpenRouter id (`anthropic/claude-sonnet-4.5`), region `unspecified` (OpenRouter picks
the upstream; the listing names no region). Prices are strings in USD per token. A `~vendor/…`
alias resolves to its `alias_target` (vendor, model), keeping the alias's name in `alias`;
`pricing.overrides` by prompt size become price tiers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
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
from router.services.catalogs._vocabulary import (
    CLOUD_HOSTING,
    OPENROUTER_INPUTS,
    OPENROUTER_OUTPUTS,
    OPENROUTER_PARAMETERS,
    canonical_vendor,
    openrouter_variant,
)

PROVIDER = "openrouter"
VARIABLE_PRICE = Decimal(-1)
"""OpenRouter's marker for a price decided per request (e.g. the `openrouter/auto` router)."""

PARAMETER_CAPABILITIES: Mapping[str, str] = OPENROUTER_PARAMETERS
"""`supported_parameters` → capabilities."""

MODALITY_CAPABILITIES: Mapping[str, str] = OPENROUTER_INPUTS
"""`architecture.input_modalities` → capabilities (text is implied)."""

PRICE_FIELDS: Mapping[str, str] = {
    "prompt": "price_in",
    "completion": "price_out",
    "input_cache_read": "price_cached_in",
}
"""OpenRouter price keys → catalog prices (USD per token → per million tokens)."""


def _strings(value: object, where: str, issues: Issues) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.add(where, value, "a list of strings")
        return []
    return list(value)


def _whole(value: object, where: str, issues: Issues) -> int | None:
    if value is None:
        return None
    if not is_whole(value):
        issues.add(where, value, "a non-negative whole number of tokens")
        return None
    return int(value)


def _price(pricing: Mapping[str, Any], name: str, where: str, issues: Issues) -> Decimal | None:
    """The price `name` of the pricing object at pointer `where`."""
    raw = pricing.get(name)
    value = price_decimal(raw)
    if value is None or (value < 0 and value != VARIABLE_PRICE):
        issues.add(
            f"{where}/{name}",
            raw,
            'a price string in USD per token ("0" for free, "-1" for variable)',
        )
        return None
    return value


def _date(value: object, where: str, issues: Issues) -> dt.date | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        issues.add(where, value, "a date YYYY-MM-DD or null")
        return None


def _overrides(
    pricing: Mapping[str, Any], base: str, issues: Issues
) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
    """`pricing.overrides` → (tiers by prompt size, time-window prices). A tier starts at
    `min_prompt_tokens`; an override with a `utc_start`/`utc_end` window is a time-of-day price."""
    raw = pricing.get("overrides")
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        issues.add(f"{base}/pricing/overrides", raw, "a list of conditional prices")
        return [], []
    tiers: list[dict[str, Any]] = []
    windows: list[dict[str, float]] = []
    for i, item in enumerate(raw):
        where = f"{base}/pricing/overrides/{i}"
        if not isinstance(item, dict):
            issues.add(where, item, "a conditional price object")
            continue
        prices: dict[str, float] = {}
        for key, attr in PRICE_FIELDS.items():
            if key in item:
                value = _price(item, key, where, issues)
                if value is not None and value >= 0:
                    prices[attr] = per_million(value)
        if not prices:
            continue  # an override of prices the catalog does not model (images, requests)
        minimum = item.get("min_prompt_tokens")
        if minimum is not None:
            if not is_whole(minimum) or minimum < 1:
                issues.add(f"{where}/min_prompt_tokens", minimum, "a whole number of tokens ≥ 1")
                continue
            tiers.append({"above_tokens_in": int(minimum) - 1, **prices})
        elif "utc_start" in item or "utc_end" in item:
            windows.append(prices)
    merged: dict[int, dict[str, Any]] = {}
    for tier in tiers:  # later entries win per price key (OpenRouter's rule)
        merged.setdefault(tier["above_tokens_in"], {}).update(tier)
    return [merged[k] for k in sorted(merged)], windows


def _vendor(ident: str) -> str | None:
    if "/" not in ident:
        return None
    author = ident.split("/", 1)[0].lstrip("~")
    return canonical_vendor(author) or author


def map_model(
    index: int, model: Mapping[str, Any], as_of: dt.date, issues: Issues, summary: ImportSummary
) -> Draft | None:
    """Map one `data[]` item; problems go to `issues`, skips to `summary`."""
    base = pointer("data", index)
    ident = model.get("id")
    if not isinstance(ident, str) or not ident:
        issues.add(f"{base}/id", ident, "a model id")
        return None
    architecture = model.get("architecture") or {}
    if not isinstance(architecture, dict):
        issues.add(f"{base}/architecture", architecture, "an object")
        architecture = {}
    inputs = _strings(
        architecture.get("input_modalities"), f"{base}/architecture/input_modalities", issues
    )
    outputs = _strings(
        architecture.get("output_modalities"), f"{base}/architecture/output_modalities", issues
    )
    pricing = model.get("pricing")
    if not isinstance(pricing, dict):
        issues.add(f"{base}/pricing", pricing, "an object with prompt and completion prices")
        return None
    unpriced = "prompt" not in pricing and "completion" not in pricing
    price_in = None if unpriced else _price(pricing, "prompt", f"{base}/pricing", issues)
    price_out = None if unpriced else _price(pricing, "completion", f"{base}/pricing", issues)
    cached = (
        _price(pricing, "input_cache_read", f"{base}/pricing", issues)
        if pricing.get("input_cache_read") is not None
        else None
    )
    tiers, windows = _overrides(pricing, base, issues)
    context = _whole(model.get("context_length"), f"{base}/context_length", issues)
    top = model.get("top_provider") or {}
    if not isinstance(top, dict):
        issues.add(f"{base}/top_provider", top, "an object")
        top = {}
    max_output = _whole(
        top.get("max_completion_tokens"), f"{base}/top_provider/max_completion_tokens", issues
    )
    moderated = top.get("is_moderated")
    if moderated is not None and not isinstance(moderated, bool):
        issues.add(f"{base}/top_provider/is_moderated", moderated, "true or false")
    parameters = _strings(model.get("supported_parameters"), f"{base}/supported_parameters", issues)
    expiration = _date(model.get("expiration_date"), f"{base}/expiration_date", issues)
    target = model.get("alias_target")
    target_slug = target.get("slug") if isinstance(target, dict) else None
    if target is not None and (not isinstance(target_slug, str) or not target_slug):
        issues.add(f"{base}/alias_target", target, "an object with the target's slug")
        target_slug = None
    intelligence = _intelligence(model.get("benchmarks"), base, issues)
    if not unpriced and (price_in is None or price_out is None):
        return None
    if outputs and "text" not in outputs:
        summary.skip(f"no text output (output_modalities: {', '.join(sorted(outputs))})")
        return None
    if VARIABLE_PRICE in (price_in, price_out):
        summary.skip('variable price ("-1": decided per request)')
        return None
    caps = {PARAMETER_CAPABILITIES[p] for p in parameters if p in PARAMETER_CAPABILITIES}
    caps |= {MODALITY_CAPABILITIES[m] for m in inputs if m in MODALITY_CAPABILITIES}
    caps |= {OPENROUTER_OUTPUTS[m] for m in outputs if m in OPENROUTER_OUTPUTS}
    if cached is not None:
        caps.add("prompt_caching")
    resolved = target_slug or ident
    attrs: dict[str, Any] = {
        "id": entry_id(PROVIDER, resolved, UNSPECIFIED_REGION),
        "model": resolved,
        "provider": PROVIDER,
        "region": UNSPECIFIED_REGION,
        "capabilities": sorted(caps),
        "status": "deprecated" if expiration is not None and expiration <= as_of else "active",
        "upstream_model": resolved,
        "variant": openrouter_variant(resolved),
        "hosting": CLOUD_HOSTING,
    }
    if unpriced or price_in is None or price_out is None:
        attrs["price_source"] = UNKNOWN_PRICE
    else:
        prices = {"price_in": per_million(price_in), "price_out": per_million(price_out)}
        if cached is not None and cached >= 0:
            prices["price_cached_in"] = per_million(cached)
        for window in windows:  # a decision reads no clock: budget on the dearest window
            for attr, value in window.items():
                prices[attr] = max(prices.get(attr, value), value)
        attrs.update(prices)
        attrs["price_source"] = "free" if not (price_in or price_out) else "priced"
        if tiers:
            attrs[PRICE_TIERS] = tiers
        if windows:
            attrs["time_of_day_pricing"] = True
    if target_slug is not None:
        attrs["alias"] = ident
    vendor = _vendor(resolved)
    if vendor is not None:
        attrs["vendor"] = vendor
    if expiration is not None:
        attrs["expiration_date"] = expiration.isoformat()
    if intelligence is not None:
        attrs["aa_intelligence_index"] = intelligence
    if context is not None:
        attrs["context_window"] = context
    if max_output is not None:
        attrs["max_output_tokens"] = max_output
    if isinstance(moderated, bool):
        attrs["moderated"] = moderated
    return Draft(ident, dict(sorted(attrs.items())))


def _intelligence(raw: object, base: str, issues: Issues) -> float | None:
    """`benchmarks.artificial_analysis.intelligence_index` (0–100, as published), if present."""
    if not isinstance(raw, dict):
        return None
    analysis = raw.get("artificial_analysis")
    value = analysis.get("intelligence_index") if isinstance(analysis, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        issues.add(
            f"{base}/benchmarks/artificial_analysis/intelligence_index", value, "a score 0 to 100"
        )
        return None
    return float(value)


def map_openrouter(
    document: object, source: Source, *, as_of: dt.date
) -> tuple[list[Draft], ImportSummary]:
    """Map a parsed `/api/v1/models` response to draft entries and the summary; raise
    `CatalogImportError` listing every problem with its pointer into the file."""
    issues = Issues(source.file)
    summary = ImportSummary(source=f"{source.file} (openrouter, sha256 {source.sha256[:12]})")
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        issues.add("/data" if isinstance(document, dict) else "", data, "a data list of models")
        raise CatalogImportError(source.file, issues.items)
    drafts: list[Draft] = []
    for i, model in enumerate(data):
        if not isinstance(model, dict):
            issues.add(pointer("data", i), model, "a model object")
            continue
        draft = map_model(i, model, as_of, issues, summary)
        if draft is not None:
            drafts.append(draft)
    issues.raise_if_any()
    listed = {d.key for d in drafts}
    by_key = {d.key: d for d in drafts}
    kept: list[Draft] = []
    for draft in drafts:
        alias = draft.attributes.get("alias")
        if alias is not None and draft.attributes["model"] in listed:
            # The target is listed itself: it names the alias, the alias adds no endpoint.
            target = by_key[draft.attributes["model"]].attributes
            target["alias"] = min(alias, target.get("alias", alias))
            summary.skip("alias (alias_target listed itself: it names the alias)")
            continue
        kept.append(draft)
    return resolve_duplicates(kept, summary), summary
