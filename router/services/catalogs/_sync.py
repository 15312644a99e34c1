"""A live catalog: fetch a source over HTTP, import it with the overlays, publish the result.

An OpenRouter sync fetches three documents: the model listing, the zero-data-retention endpoint
list and the EU listing (`_openrouter_facts`), so a synced catalog has the same `no_log` facts and
`@eu` entries as `catalog import openrouter --zdr --eu`. Their URLs derive from the listing's (a
mirror of `…/api/v1/models` serves `…/api/v1/endpoints/zdr` and `…/api/v1/models?region=eu`) unless
given, and either can be turned off.

Publishing is content-addressed, so sources whose content did not change give the same catalog
version and publishing it again is a no-op: `sync_catalog` reports `created=False`. A failed fetch
of any document raises `CatalogFetchError` and publishes nothing, so the current version stays in
force.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from router.core import Catalog, InputError, Issue, RouterError
from router.services.catalogs._files import parse_json_text
from router.services.catalogs._health import CatalogHealth, catalog_health
from router.services.catalogs._imports import ImportResult, Source
from router.services.catalogs._openrouter_facts import EU_KIND, ZDR_KIND
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

OFF = "off"
"""The value of a ZDR or EU URL option that syncs without that document."""

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


class SyncSourceError(RouterError):
    """The URLs of a sync are inconsistent: which option, and why, in one line."""


@dataclass(frozen=True)
class SyncSources:
    """What one sync fetches: the source kind and URL and, for OpenRouter, the URLs of its
    zero-data-retention endpoint list and EU listing (None: not fetched)."""

    kind: str
    url: str
    zdr_url: str | None = None
    eu_url: str | None = None

    def facts(self) -> list[tuple[str, str]]:
        """(kind, URL) of each fact document fetched beside the source, in fetch order."""
        pairs = [(ZDR_KIND, self.zdr_url), (EU_KIND, self.eu_url)]
        return [(kind, url) for kind, url in pairs if url is not None]


def derived_fact_urls(url: str) -> tuple[str, str] | None:
    """The ZDR list and EU listing beside an OpenRouter listing URL whose path ends in `/models`
    (`…/api/v1/models` → `…/api/v1/endpoints/zdr`, `…/api/v1/models?region=eu`), as OpenRouter
    lays them out; None when the path does not end in `/models`."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith("/models"):
        return None
    zdr = urlunsplit((parts.scheme, parts.netloc, path[: -len("models")] + "endpoints/zdr", "", ""))
    query = f"{parts.query}&region=eu" if parts.query else "region=eu"
    eu = urlunsplit((parts.scheme, parts.netloc, path, query, ""))
    return zdr, eu


def _token(option: str, value: str) -> str:
    """An option as the user wrote it: `'zdr=VALUE'` in the setting, `--zdr-url VALUE` on the
    command line."""
    return f"'{option}{value}'" if option.endswith("=") else f"{option} {value}"


def sync_sources(
    kind: str,
    url: str | None = None,
    *,
    zdr_url: str | None = None,
    eu_url: str | None = None,
    options: tuple[str, str, str] = ("--url", "--zdr-url", "--eu-url"),
) -> SyncSources:
    """The URLs a sync of `kind` fetches. `url` defaults to the source's public URL; `zdr_url`
    and `eu_url` (OpenRouter only) default to the ones derived from `url`, and `off` skips that
    document. `options` names the URL options in errors (`SyncSourceError`): the command's
    flags, or the setting's `url=`, `zdr=`, `eu=`."""
    where = url or SOURCE_URLS[kind]
    url_option, *fact_options = options
    given = (zdr_url, eu_url)
    if kind != "openrouter":
        for option, value in zip(fact_options, given, strict=True):
            if value is not None:
                raise SyncSourceError(
                    f"{_token(option, value)}: the ZDR list and the EU listing are OpenRouter's; "
                    f"a {kind} sync fetches its source only"
                )
        return SyncSources(kind, where)
    derived = derived_fact_urls(where)
    resolved: list[str | None] = []
    for i, (option, value, what) in enumerate(
        zip(fact_options, given, ("ZDR endpoint list", "EU listing"), strict=True)
    ):
        if value == OFF:
            resolved.append(None)
        elif value is not None:
            if not value.startswith(("http://", "https://")):
                raise SyncSourceError(
                    f"{_token(option, value)}: expected an http:// or https:// URL, or {OFF}"
                )
            resolved.append(value)
        elif derived is None:
            raise SyncSourceError(
                f"{_token(url_option, where)}: cannot derive the {what}'s URL (the path does not "
                f"end in /models); give {_token(option, 'URL')}, or {_token(option, OFF)} to "
                "sync without it"
            )
        else:
            resolved.append(derived[i])
    return SyncSources(kind, where, resolved[0], resolved[1])


@dataclass(frozen=True)
class Published:
    """What publishing a catalog did: its version, and whether the version is new."""

    version: str
    created: bool


Publish = Callable[[Catalog], Awaitable[Published]]
"""Publishes a catalog version (content-addressed: publishing a known version is a no-op)."""


@dataclass(frozen=True)
class SyncOutcome:
    """One sync: where from, the import, its health, and whether a new version was published."""

    sources: SyncSources
    result: ImportResult
    health: CatalogHealth
    published: Published

    @property
    def kind(self) -> str:
        """The source kind (`litellm`, `openrouter`)."""
        return self.sources.kind

    @property
    def url(self) -> str:
        """The source's URL."""
        return self.sources.url

    def to_json(self) -> dict[str, Any]:
        """The outcome as JSON (`zdr_url`/`eu_url` null when not fetched; OpenRouter only)."""
        facts = (
            {"zdr_url": self.sources.zdr_url, "eu_url": self.sources.eu_url}
            if self.kind == "openrouter"
            else {}
        )
        return {
            "kind": self.kind,
            "url": self.url,
            **facts,
            "version": self.published.version,
            "created": self.published.created,
            "entries": len(self.result.catalog.entries),
            "summary": self.result.summary.to_json(),
            "health": self.health.to_json(),
        }

    def render(self) -> str:
        """One line: what was published (or that the source did not change)."""
        state = "published new version" if self.published.created else "unchanged, already at"
        names = {ZDR_KIND: "ZDR list", EU_KIND: "EU listing"}
        facts = [f"{names[kind]} {url}" for kind, url in self.sources.facts()]
        where = f"{self.url} (with {', '.join(facts)})" if facts else self.url
        return (
            f"{self.kind} from {where}: {state} {self.published.version} "
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


async def fetch_all(sources: SyncSources) -> list[bytes]:
    """The bodies of the source and its fact documents (`SyncSources.facts` order), fetched one
    after the other; the first failure raises `CatalogFetchError`."""
    return [await fetch_source(url) for url in (sources.url, *(u for _, u in sources.facts()))]


def _parsed(kind: str, url: str, data: bytes) -> tuple[object, Source]:
    """A fetched body parsed, with its source: the file is named by the URL's last path segment
    (and its query, if any), so the same bytes give the same version wherever they come from."""
    parts = urlsplit(url)
    file = parts.path.rstrip("/").rsplit("/", 1)[-1] or kind
    if parts.query:
        file = f"{file}?{parts.query}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogFetchError(url, f"the body is not UTF-8 (byte {exc.start})") from None
    return parse_json_text(text, file), Source.of_bytes(kind, file, data)


def import_fetched(
    kind: str,
    url: str,
    data: bytes,
    *,
    as_of: dt.date,
    overlays: Sequence[Overlay] = (),
    name: str | None = None,
    zdr: tuple[str, bytes] | None = None,
    eu: tuple[str, bytes] | None = None,
) -> ImportResult:
    """Import fetched bytes as `kind` (`litellm` or `openrouter`), for OpenRouter with the
    fetched ZDR list and EU listing (`(url, bytes)`, as `catalog import openrouter --zdr --eu`).
    Each document's source file is named by its URL's last path segment and query."""
    document, source = _parsed(kind, url, data)
    if kind == "litellm":
        return import_litellm_document(
            document, source, as_of=as_of, overlays=overlays, name=name or kind
        )
    if kind == "openrouter":
        return import_openrouter_document(
            document,
            source,
            as_of=as_of,
            overlays=overlays,
            name=name or kind,
            zdr=None if zdr is None else _parsed(ZDR_KIND, *zdr),
            eu=None if eu is None else _parsed(EU_KIND, *eu),
        )
    raise ValueError(f"unknown catalog source kind {kind!r}")


def import_sources(
    sources: SyncSources,
    bodies: Sequence[bytes],
    *,
    as_of: dt.date,
    overlays: Sequence[Overlay] = (),
    name: str | None = None,
) -> ImportResult:
    """Import the bodies `fetch_all(sources)` returned."""
    facts = dict(zip((kind for kind, _ in sources.facts()), bodies[1:], strict=True))
    return import_fetched(
        sources.kind,
        sources.url,
        bodies[0],
        as_of=as_of,
        overlays=overlays,
        name=name,
        zdr=None if sources.zdr_url is None else (sources.zdr_url, facts[ZDR_KIND]),
        eu=None if sources.eu_url is None else (sources.eu_url, facts[EU_KIND]),
    )


async def sync_catalog(
    kind: str,
    publish: Publish,
    *,
    as_of: dt.date,
    url: str | None = None,
    zdr_url: str | None = None,
    eu_url: str | None = None,
    overlays: Sequence[Overlay] = (),
    name: str | None = None,
) -> SyncOutcome:
    """Fetch the sources (`sync_sources`: `url`, default `SOURCE_URLS[kind]`, and for OpenRouter
    the ZDR list and EU listing, derived from `url` unless given or `off`), import them with the
    overlays and publish the catalog. Nothing is published when a fetch or the import fails."""
    sources = sync_sources(kind, url, zdr_url=zdr_url, eu_url=eu_url)
    bodies = await fetch_all(sources)
    result = import_sources(sources, bodies, as_of=as_of, overlays=overlays, name=name)
    published = await publish(result.catalog)
    return SyncOutcome(sources, result, catalog_health(result.catalog, result.summary), published)
