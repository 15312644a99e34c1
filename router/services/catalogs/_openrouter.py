"""Import OpenRouter's model list (the JSON of `GET https://openrouter.ai/api/v1/models`).

Each `data[]` item is one model reachable through OpenRouter's single API: provider `openrouter`,
model = the OpenRouter id (`anthropic/claude-sonnet-4.5`), region `unspecified` (OpenRouter picks
the upstream; the listing names no region). Prices are strings in USD per token.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
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

PROVIDER = "openrouter"
VARIABLE_PRICE = Decimal(-1)
"""OpenRouter's marker for a price decided per request (e.g. the `openrouter/auto` router)."""

PARAMETER_CAPABILITIES: Mapping[str, str] = {
    "tools": "tools",
    "tool_choice": "tool_choice",
    "response_format": "json",
    "structured_outputs": "json",
    "reasoning": "reasoning",
    "include_reasoning": "reasoning",
    "web_search_options": "web_search",
}
"""`supported_parameters` → capabilities."""

MODALITY_CAPABILITIES: Mapping[str, str] = {
    "image": "vision",
    "file": "pdf",
    "audio": "audio_input",
    "video": "video_input",
}
"""`architecture.input_modalities` → capabilities (text is implied)."""


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


def _price(pricing: Mapping[str, Any], name: str, base: str, issues: Issues) -> Decimal | None:
    raw = pricing.get(name)
    value = price_decimal(raw)
    if value is None or (value < 0 and value != VARIABLE_PRICE):
        issues.add(
            f"{base}/pricing/{name}",
            raw,
            'a price string in USD per token ("0" for free, "-1" for variable)',
        )
        return None
    return value


def map_model(
    index: int, model: Mapping[str, Any], issues: Issues, summary: ImportSummary
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
    price_in = _price(pricing, "prompt", base, issues)
    price_out = _price(pricing, "completion", base, issues)
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
    if price_in is None or price_out is None:
        return None
    if outputs and "text" not in outputs:
        summary.skip(f"no text output (output_modalities: {', '.join(sorted(outputs))})")
        return None
    if VARIABLE_PRICE in (price_in, price_out):
        summary.skip('variable price ("-1": decided per request)')
        return None
    caps = {PARAMETER_CAPABILITIES[p] for p in parameters if p in PARAMETER_CAPABILITIES}
    caps |= {MODALITY_CAPABILITIES[m] for m in inputs if m in MODALITY_CAPABILITIES}
    attrs: dict[str, Any] = {
        "id": entry_id(PROVIDER, ident, UNSPECIFIED_REGION),
        "model": ident,
        "provider": PROVIDER,
        "region": UNSPECIFIED_REGION,
        "price_in": per_million(price_in),
        "price_out": per_million(price_out),
        "capabilities": sorted(caps),
        "status": "active",
        "upstream_model": ident,
    }
    if "/" in ident:
        attrs["vendor"] = ident.split("/", 1)[0]
    if context is not None:
        attrs["context_window"] = context
    if max_output is not None:
        attrs["max_output_tokens"] = max_output
    if isinstance(moderated, bool):
        attrs["moderated"] = moderated
    return Draft(ident, dict(sorted(attrs.items())))


def map_openrouter(document: object, source: Source) -> tuple[list[Draft], ImportSummary]:
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
        draft = map_model(i, model, issues, summary)
        if draft is not None:
            drafts.append(draft)
    issues.raise_if_any()
    return resolve_duplicates(drafts, summary), summary
