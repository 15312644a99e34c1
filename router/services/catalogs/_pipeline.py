"""Import pipelines: read a source file, map it, apply overlays, validate into a `Catalog`.

The `*_document` functions are pure (parsed documents in, catalog out); the file functions add the
reading, hashing and parsing. Nothing here reads a clock: the deprecation cut-off is `as_of`.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.services.catalogs._files import DocumentReadError, parse_json_text
from router.services.catalogs._imports import (
    Draft,
    ImportResult,
    ImportSummary,
    Source,
    assemble,
)
from router.services.catalogs._litellm import map_litellm
from router.services.catalogs._openrouter import map_openrouter
from router.services.catalogs._openrouter_facts import (
    EU_KIND,
    ZDR_KIND,
    add_zdr_facts,
    eu_drafts,
    merge_eu,
    parse_zdr_endpoints,
)
from router.services.catalogs._overlay import Overlay, apply_overlays, load_yaml_text, parse_overlay


def read_bytes(path: str | Path) -> tuple[str, bytes]:
    """(display name, bytes) of a file; `-` reads stdin. The name is the file's base name, so the
    provenance (and the catalog version) does not depend on where the file lives."""
    name = str(path)
    if name == "-":
        return "stdin", sys.stdin.buffer.read()
    try:
        return Path(path).name, Path(path).read_bytes()
    except OSError as exc:
        raise DocumentReadError(name, f"cannot read: {exc.strerror or exc}") from None


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentReadError(name, f"not UTF-8 (byte {exc.start})") from None


def load_overlay(path: str | Path) -> Overlay:
    """Read and validate an overlay file: `.json` is strict JSON, anything else YAML."""
    name, data = read_bytes(path)
    text = _decode(name, data)
    document: Any = (
        parse_json_text(text, name) if name.endswith(".json") else load_yaml_text(text, name)
    )
    source = Source.of_bytes("overlay", name, data)
    return parse_overlay(document, name, source.sha256, Path(name).stem)


def _finish(
    name: str,
    drafts: list[Draft],
    summary: ImportSummary,
    source: Source,
    overlays: Sequence[Overlay],
    facts: Sequence[Source] = (),
    overrides: dict[str, dict[str, str]] | None = None,
) -> ImportResult:
    edited, overrides, schema = apply_overlays(drafts, overlays, summary, overrides)
    sources = [*facts, *(o.source for o in overlays)]
    return assemble(name, edited, source, sources, overrides, schema, summary)


def import_litellm_document(
    document: object,
    source: Source,
    *,
    as_of: dt.date,
    overlays: Sequence[Overlay] = (),
    name: str = "litellm",
) -> ImportResult:
    """A parsed LiteLLM price map (+ overlays) → validated catalog and summary."""
    drafts, summary = map_litellm(document, source, as_of=as_of)
    return _finish(name, drafts, summary, source, overlays)


def import_openrouter_document(
    document: object,
    source: Source,
    *,
    as_of: dt.date,
    overlays: Sequence[Overlay] = (),
    name: str = "openrouter",
    zdr: tuple[object, Source] | None = None,
    eu: tuple[object, Source] | None = None,
) -> ImportResult:
    """A parsed OpenRouter `/api/v1/models` response (+ overlays) → catalog and summary;
    `as_of` is the cut-off for `expiration_date` (status `deprecated` from that date on).

    `zdr` is a parsed `/api/v1/endpoints/zdr` response and `eu` a parsed
    `/api/v1/models?region=eu` listing, each with its source: the facts OpenRouter enforces at
    request time (`no_log`, region `eu`; see `_openrouter_facts`). Overlays apply after them.
    """
    drafts, summary = map_openrouter(document, source, as_of=as_of)
    overrides: dict[str, dict[str, str]] = {}
    facts: list[Source] = []
    if zdr is not None:
        zdr_document, zdr_source = zdr
        add_zdr_facts(
            drafts, document, parse_zdr_endpoints(zdr_document, zdr_source), zdr_source, overrides
        )
        facts.append(zdr_source)
    if eu is not None:
        eu_document, eu_source = eu
        regional, eu_summary = eu_drafts(eu_document, eu_source, as_of=as_of, overrides=overrides)
        drafts = merge_eu(drafts, regional, summary, eu_summary)
        facts.append(eu_source)
    return _finish(name, drafts, summary, source, overlays, facts, overrides)


def _read_source(kind: str, path: str | Path) -> tuple[object, Source]:
    file, data = read_bytes(path)
    return parse_json_text(_decode(file, data), file), Source.of_bytes(kind, file, data)


def import_litellm_file(
    path: str | Path,
    *,
    as_of: dt.date,
    overlays: Sequence[str | Path] = (),
    name: str = "litellm",
) -> ImportResult:
    """Import LiteLLM's `model_prices_and_context_window.json` with overlay files."""
    document, source = _read_source("litellm", path)
    loaded = [load_overlay(p) for p in overlays]
    return import_litellm_document(document, source, as_of=as_of, overlays=loaded, name=name)


def import_openrouter_file(
    path: str | Path,
    *,
    as_of: dt.date,
    overlays: Sequence[str | Path] = (),
    name: str = "openrouter",
    zdr: str | Path | None = None,
    eu: str | Path | None = None,
) -> ImportResult:
    """Import a saved `GET /api/v1/models` response from OpenRouter with overlay files, and
    optionally saved `GET /api/v1/endpoints/zdr` (`zdr`) and `GET /api/v1/models?region=eu`
    (`eu`) responses."""
    document, source = _read_source("openrouter", path)
    loaded = [load_overlay(p) for p in overlays]
    return import_openrouter_document(
        document,
        source,
        as_of=as_of,
        overlays=loaded,
        name=name,
        zdr=None if zdr is None else _read_source(ZDR_KIND, zdr),
        eu=None if eu is None else _read_source(EU_KIND, eu),
    )
