"""A catalog sync on a schedule, as `serve` runs it (`UNHARDCODED_CATALOG_SYNC`).

The setting names one source and how often to sync it:

    litellm
    openrouter every=15m url=http://mirror.internal/api/v1/models overlay=/etc/facts.yaml
    openrouter url=http://mirror/or/models.json zdr=http://mirror/or/zdr.json eu=off

An OpenRouter sync also fetches the ZDR endpoint list and the EU listing (`zdr=`, `eu=`; derived
from `url=` by default, `off` to skip one), as `catalog sync openrouter` does.

One source per ledger, because new decisions use the latest published catalog version: two
sources synced into one ledger would take turns being the latest. Each run fetches the source,
imports it off the event loop (the import of LiteLLM's map is CPU work of about a second) and
publishes the catalog; publishing is content-addressed, so every process of every router can run
the schedule and an unchanged source, or a version another process published first, is a no-op.
A failed run publishes nothing, so the current version stays in force; it is logged at WARNING
with the reason and reported to the outcome listener (the `/metrics` counters).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from router.core import RouterError
from router.services.catalogs._overlay import Overlay
from router.services.catalogs._sync import (
    SOURCE_URLS,
    Publish,
    Published,
    SyncSourceError,
    SyncSources,
    fetch_all,
    import_sources,
    sync_sources,
)

__all__ = [
    "DEFAULT_SYNC_INTERVAL_S",
    "MIN_SYNC_INTERVAL_S",
    "SYNC_SETTING",
    "CatalogSyncer",
    "SyncSchedule",
    "SyncSettingError",
    "parse_sync_setting",
]

log = logging.getLogger("router.services.catalogs.sync")

SYNC_SETTING = "UNHARDCODED_CATALOG_SYNC"
DEFAULT_SYNC_INTERVAL_S = 3600.0
"""One hour: LiteLLM's map and OpenRouter's list change a few times a day."""
MIN_SYNC_INTERVAL_S = 1.0
_OPTIONS = ("every", "url", "zdr", "eu", "overlay", "name")
_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>s|m|h)?")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


class SyncSettingError(RouterError):
    """`UNHARDCODED_CATALOG_SYNC` is not a valid schedule: what and why, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{SYNC_SETTING}: {message}")


@dataclass(frozen=True)
class SyncSchedule:
    """What to sync and how often: the source kind, its URL, the interval and overlay files;
    for OpenRouter the ZDR list's and EU listing's URLs (None: not fetched)."""

    kind: str
    url: str
    interval_s: float = DEFAULT_SYNC_INTERVAL_S
    overlays: tuple[str, ...] = ()
    name: str | None = None
    zdr_url: str | None = None
    eu_url: str | None = None

    @property
    def sources(self) -> SyncSources:
        """What each run fetches."""
        return SyncSources(self.kind, self.url, self.zdr_url, self.eu_url)


def _duration(token: str, value: str) -> float:
    match = _DURATION.fullmatch(value)
    if match is None:
        raise SyncSettingError(
            f"{token!r}: expected a duration such as 30s, 15m, 1h or a number of seconds"
        )
    seconds = float(match["number"]) * _UNIT_SECONDS[match["unit"] or "s"]
    if seconds < MIN_SYNC_INTERVAL_S:
        raise SyncSettingError(
            f"{token!r}: the interval must be at least {MIN_SYNC_INTERVAL_S:g} s"
        )
    return seconds


def parse_sync_setting(text: str) -> SyncSchedule | None:
    """The schedule `text` describes (None when it is empty: no scheduled sync).

    The first word is the source (`litellm` or `openrouter`); then `key=value` options, in any
    order: `every=` (30s, 15m, 1h or seconds; default 1h, at least 1 s), `url=` (an http(s) URL,
    default the source's public URL), `zdr=` and `eu=` (OpenRouter only: the ZDR endpoint list's
    and EU listing's http(s) URLs, default derived from `url=`, or `off`), `overlay=` (a file,
    repeatable, applied in order), `name=` (the catalog name, default the source).
    `SyncSettingError` names the first problem."""
    words = text.split()
    if not words:
        return None
    kind = words[0]
    if kind not in SOURCE_URLS:
        raise SyncSettingError(
            f"unknown source {kind!r} (expected {' or '.join(sorted(SOURCE_URLS))} first)"
        )
    options: dict[str, str] = {}
    overlays: list[str] = []
    for token in words[1:]:
        key, sep, value = token.partition("=")
        if not sep:
            raise SyncSettingError(
                f"{token!r}: expected key=value ({', '.join(k + '=' for k in _OPTIONS)}); one "
                "source per ledger, since new decisions use the latest published catalog"
            )
        if key not in _OPTIONS:
            raise SyncSettingError(
                f"{token!r}: unknown option (expected {', '.join(k + '=' for k in _OPTIONS)})"
            )
        if not value:
            raise SyncSettingError(f"{token!r}: the value is empty")
        if key == "overlay":
            overlays.append(value)
        elif key in options:
            raise SyncSettingError(f"{token!r}: {key}= is given twice")
        else:
            options[key] = value
    url = options.get("url", SOURCE_URLS[kind])
    if not url.startswith(("http://", "https://")):
        raise SyncSettingError(f"'url={url}': expected an http:// or https:// URL")
    try:
        sources = sync_sources(
            kind,
            url,
            zdr_url=options.get("zdr"),
            eu_url=options.get("eu"),
            options=("url=", "zdr=", "eu="),
        )
    except SyncSourceError as exc:
        raise SyncSettingError(str(exc)) from None
    interval = (
        _duration(f"every={options['every']}", options["every"])
        if "every" in options
        else (DEFAULT_SYNC_INTERVAL_S)
    )
    return SyncSchedule(
        kind,
        url,
        interval,
        tuple(overlays),
        options.get("name"),
        sources.zdr_url,
        sources.eu_url,
    )


SyncListener = Callable[[str, str, "str | None"], None]
"""Called after every run with (source kind, outcome, published version or None); outcomes:
`published` (a new version), `unchanged` (already published), `failed`."""


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass
class CatalogSyncer:
    """Runs a `SyncSchedule`: `run_once` syncs now, `run` syncs forever at the interval.

    The deprecation cut-off is today (UTC) at each run, as for `catalog sync`. A run whose
    fetched bytes (of every document) and cut-off equal the last successful run's is `unchanged`
    without importing again (the import is a pure function of both, so it would give the same
    version); a failed fetch of any document fails the run."""

    schedule: SyncSchedule
    publish: Publish
    overlays: Sequence[Overlay] = ()
    on_outcome: SyncListener | None = None
    today: Callable[[], dt.date] = _today
    _last: tuple[tuple[bytes, ...], dt.date, str] | None = field(default=None, init=False)

    async def run_once(self) -> Published | None:
        """Sync once: what was published, or None when the run failed (logged at WARNING with
        the reason and reported as `failed`; nothing is published)."""
        kind, url = self.schedule.kind, self.schedule.url
        try:
            published = await self._sync()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed run must never end the schedule, whatever the cause
            # imported here: `rank` loads this package and must not load the ledger
            from ledger import LedgerError

            if isinstance(exc, RouterError | LedgerError):
                log.warning("catalog sync of %s from %s failed: %s", kind, url, exc)
            else:
                log.warning(
                    "catalog sync of %s from %s failed: %s: %s",
                    kind,
                    url,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
            self._report("failed", None)
            return None
        outcome = "published" if published.created else "unchanged"
        if published.created:
            log.info("catalog sync of %s published version %s", kind, published.version)
        self._report(outcome, published.version)
        return published

    async def _sync(self) -> Published:
        sources = self.schedule.sources
        bodies = await fetch_all(sources)
        as_of = self.today()
        digest = tuple(hashlib.sha256(body).digest() for body in bodies)
        if self._last is not None and self._last[:2] == (digest, as_of):
            return Published(self._last[2], False)
        result = await asyncio.to_thread(
            import_sources,
            sources,
            bodies,
            as_of=as_of,
            overlays=self.overlays,
            name=self.schedule.name,
        )
        published = await self.publish(result.catalog)
        self._last = (digest, as_of, published.version)
        return published

    def _report(self, outcome: str, version: str | None) -> None:
        if self.on_outcome is not None:
            self.on_outcome(self.schedule.kind, outcome, version)

    async def run(self) -> None:
        """Sync now, then every `interval_s` (measured from the start of each run), until
        cancelled."""
        while True:
            started = time.monotonic()
            await self.run_once()
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.schedule.interval_s - elapsed))
