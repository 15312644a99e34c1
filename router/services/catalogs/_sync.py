"""A live catalog: fetch a source over HTTP, import it with the overlays, publish the result.

Publishing is content-addressed, so a source whose content did not change gives the same catalog
version and publishing it again is a no-op: `sync_catalog` reports `created=False`. A failed fetch
raises `CatalogFetchError` and publishes nothing, so the current version stays in force.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from router.core import Catalog, InputError, Issue
from router.services.catalogs._files import parse_json_text
from router.services.catalogs._health import CatalogHealth, catalog_health
from router.services.catalogs._imports import ImportResult, Source
from router.services.catalogs._overlay import Overlay
from router.services.catalogs._pipeline import (
    import_litellm_document,
    import_openrouter_document,
)

SOURCE_URLS: Mapping[str, str] = {
    "litellm": "https://raw.githubusercontent.com/BerriAI/litellm/main/"
    "model_prices_and_context_window.json",
    "openrouter": "https://openrouter.ai/api/v1/models",
}
"""Default source of each importer; `--url` points a sync at a mirror instead."""

FETCH_TIMEOUT_SECONDS = 30.0
MAX_SOURCE_BYTES = 64 * 1024 * 1024
"""A source larger than this is refused (LiteLLM's map is about 1.5 MB)."""


class CatalogFetchError(InputError):
    """A catalog source could not be fetched: the URL and why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__([Issue("", url, "a catalog source", f"cannot fetch {url}: {reason}")])
        self.url = url
        self.reason = reason
        self.args = (f"cannot fetch {url}: {reason}",)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Published:
    """What publishing a catalog did: its version, and whether the version is new."""

    version: str
    created: bool


Publish = Callable[[Catalog], Awaitable[Published]]
"""Publishes a catalog version (content-addressed: publishing a known version is a no-op)."""


@dataclass(frozen=True)
class SyncOutcome:
    """One sync: where from, the bytes' digest, the import, and whether a new version was
    published."""

    kind: str
    url: str
    result: ImportResult
    health: CatalogHealth
    published: Published

    def to_json(self) -> dict[str, Any]:
        """The outcome as JSON."""
        return {
            "kind": self.kind,
            "url": self.url,
            "version": self.published.version,
            "created": self.published.created,
            "entries": len(self.result.catalog.entries),
            "summary": self.result.summary.to_json(),
            "health": self.health.to_json(),
        }

    def render(self) -> str:
        """One line: what was published (or that the source did not change)."""
        state = "published new version" if self.published.created else "unchanged, already at"
        return (
            f"{self.kind} from {self.url}: {state} {self.published.version} "
            f"({len(self.result.catalog.entries)} entries)"
        )


async def fetch_source(url: str) -> bytes:
    """The body of a successful GET of `url` (redirects followed); `CatalogFetchError` on any
    failure, a status other than 200, or a body above `MAX_SOURCE_BYTES`."""
    import aiohttp  # only a sync needs an HTTP client: commands that never fetch skip loading it

    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise CatalogFetchError(url, f"HTTP {response.status}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > MAX_SOURCE_BYTES:
                    raise CatalogFetchError(url, f"larger than {MAX_SOURCE_BYTES:,} bytes")
                chunks.append(chunk)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise CatalogFetchError(url, f"{type(exc).__name__}: {exc}") from None
    return b"".join(chunks)


def import_fetched(
    kind: str,
    url: str,
    data: bytes,
    *,
    as_of: dt.date,
    overlays: Sequence[Overlay] = (),
    name: str | None = None,
) -> ImportResult:
    """Import fetched bytes as `kind` (`litellm` or `openrouter`); the source file is named by
    the URL's last path segment, so the same bytes give the same version wherever they come
    from."""
    file = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or kind
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogFetchError(url, f"the body is not UTF-8 (byte {exc.start})") from None
    document = parse_json_text(text, file)
    source = Source.of_bytes(kind, file, data)
    if kind == "litellm":
        return import_litellm_document(
            document, source, as_of=as_of, overlays=overlays, name=name or kind
        )
    if kind == "openrouter":
        return import_openrouter_document(
            document, source, as_of=as_of, overlays=overlays, name=name or kind
        )
    raise ValueError(f"unknown catalog source kind {kind!r}")


async def sync_catalog(
    kind: str,
    publish: Publish,
    *,
    as_of: dt.date,
    url: str | None = None,
    overlays: Sequence[Overlay] = (),
    name: str | None = None,
) -> SyncOutcome:
    """Fetch `url` (default: `SOURCE_URLS[kind]`), import it with the overlays and publish the
    catalog. Nothing is published when the fetch or the import fails."""
    where = url or SOURCE_URLS[kind]
    data = await fetch_source(where)
    result = import_fetched(kind, where, data, as_of=as_of, overlays=overlays, name=name)
    published = await publish(result.catalog)
    return SyncOutcome(
        kind, where, result, catalog_health(result.catalog, result.summary), published
    )
