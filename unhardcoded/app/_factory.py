"""The composition root of the HTTP service: `create_app(settings)`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from ledger import Ledger, LedgerError
from router.core import Catalog, RouterError
from router.services.catalogs import (
    CatalogSyncer,
    Overlay,
    Published,
    SyncSchedule,
    SyncSettingError,
)
from router.services.decisions import DecisionService
from router.services.gateway import Gateway, IdempotencyStore, KeyStore, Metrics
from router.services.upstream import AiohttpTransport, ProviderRegistry, Upstream
from router.services.witness import CosignatureStore, WitnessSubmitter, parse_witnesses
from unhardcoded import __version__
from unhardcoded.app._errors import install_error_handlers
from unhardcoded.app._health import Readiness, health_router, migration_heads
from unhardcoded.app._logging import AccessLog
from unhardcoded.app._models import models_router
from unhardcoded.app._openapi import install_openapi
from unhardcoded.app._routes import Services, add_chat_route, router
from unhardcoded.db import create_engine, migrated_ledger
from unhardcoded.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("unhardcoded.app")

_DESCRIPTION = """
OpenAI-compatible gateway: every request carries a routing **policy** (sigma-pol/v1, in the body
field `policy`); the gateway evaluates it over the catalog, records the decision in a
tamper-evident ledger *before* calling any upstream, then calls the plan's entries with fallback.
Authenticate with `Authorization: Bearer uhk_…` (create keys with `unhardcoded keys create`).
Errors use OpenAI's shape `{"error": {"message", "type", "param", "code"}}`; `param` is a JSON
pointer into the body. See docs/gateway.md.
"""


async def _sequence_forever(ledger: Ledger, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await ledger.sequence()
        except LedgerError as exc:
            log.warning("checkpointing failed: %s", exc)


#: The collector's first threshold while serving (Python's default is 700): above the objects
#: that a few dozen requests in flight keep alive, so that young collections run for garbage
#: rather than to rescan requests that are still going.
YOUNG_COLLECTION_THRESHOLD = 10_000


@contextlib.contextmanager
def _collector_for_serving() -> Iterator[None]:
    """The cyclic garbage collector set for a long-running server (docs/gateway.md,
    "Performance"), for the life of the app: undone when it stops (tests run many apps)."""
    thresholds = gc.get_threshold()
    gc.collect()  # what is already garbage is freed, not frozen
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def scheduled_sync(settings: Settings) -> tuple[SyncSchedule, list[Overlay]] | None:
    """The catalog sync `UNHARDCODED_CATALOG_SYNC` asks for, its overlay files read, or None.
    `SyncSettingError` (or the overlay's error) when it is invalid or set beside a catalog
    file, which fixes the catalog new decisions use (synced versions would never be used)."""
    from router.services.catalogs import SYNC_SETTING, load_overlay, parse_sync_setting

    schedule = parse_sync_setting(settings.catalog_sync)
    if schedule is None:
        return None
    if settings.catalog is not None:
        raise SyncSettingError(
            "cannot be used with a catalog file (--catalog, UNHARDCODED_CATALOG): the file fixes "
            f"the catalog new decisions use, so synced versions would never be used; unset one "
            f"of them ({SYNC_SETTING} or the catalog file)"
        )
    overlays = []
    for path in schedule.overlays:
        try:
            overlays.append(load_overlay(path))
        except RouterError as exc:
            raise SyncSettingError(f"'overlay={path}': {exc}") from None
    return schedule, overlays


def _syncer(sync: tuple[SyncSchedule, list[Overlay]], gateway: Gateway) -> CatalogSyncer:
    metrics = gateway.metrics

    async def publish(catalog: Catalog) -> Published:
        done = await gateway.decisions.publish_catalog(catalog)
        await gateway.refresh_catalog()  # this process routes on it at once, others within 5 s
        return Published(done.version, done.created)

    schedule, overlays = sync
    return CatalogSyncer(schedule, publish, overlays, on_outcome=metrics.catalog_sync_outcome)


def create_app(
    settings: Settings | None = None,
    *,
    environ: dict[str, str] | None = None,
) -> FastAPI:
    """The FastAPI app. Resources (ledger, key store, upstream transport) open in its lifespan.

    Provider settings come from `environ` (default: the process environment), see
    docs/providers.md.
    """
    settings = settings or Settings()
    registry = ProviderRegistry.from_env(os.environ if environ is None else environ)
    catalog = None
    if settings.catalog is not None:
        from router.services.catalogs import load_catalog

        catalog = load_catalog(str(settings.catalog))

    metrics = Metrics()
    witnesses = parse_witnesses(settings.witnesses)
    catalog_sync = scheduled_sync(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            ledger = await stack.enter_async_context(
                migrated_ledger(settings.database_url, home=settings.home.expanduser())
            )
            engine = create_engine(settings.database_url)
            stack.push_async_callback(engine.dispose)
            transport = await stack.enter_async_context(
                AiohttpTransport(max_connections=512, user_agent=f"unhardcoded/{__version__}")
            )
            gateway = Gateway(
                DecisionService(ledger, store_request_bodies=settings.store_request_bodies),
                Upstream(transport, registry),
                metrics,
                catalog=catalog,
                echo_all=settings.echo_all,
            )
            idempotency = None
            if settings.idempotency_window_s > 0:
                idempotency = IdempotencyStore(
                    engine,
                    window_s=settings.idempotency_window_s,
                    wait_s=settings.idempotency_wait_s,
                )
            app.state.services = Services(
                gateway=gateway,
                keys=KeyStore(engine, cache_ttl_s=settings.key_cache_ttl_s),
                idempotency=idempotency,
                ledger=ledger,
                max_body_bytes=settings.max_body_bytes,
                cosignatures=CosignatureStore(ledger.store),
            )
            app.state.readiness = Readiness(ledger, gateway, migration_heads())
            background = [
                asyncio.create_task(_sequence_forever(ledger, settings.checkpoint_interval_s))
            ]
            if catalog_sync is not None:
                background.append(asyncio.create_task(_syncer(catalog_sync, gateway).run()))
            if witnesses:
                import aiohttp  # the witness client's library, only when witnesses are set

                submitter = WitnessSubmitter(
                    ledger,
                    witnesses,
                    await stack.enter_async_context(aiohttp.ClientSession()),
                    timeout_s=settings.witness_timeout_s,
                    on_outcome=metrics.witness_outcome,
                )
                ledger.add_checkpoint_listener(submitter.notify)
                background.append(asyncio.create_task(submitter.run()))
            try:
                with _collector_for_serving():
                    yield
            finally:
                for task in background:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app = FastAPI(
        title="unhardcoded gateway",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,  # one documentation page: /docs
        # The gateway reports through /metrics and its JSON log; FastAPI's OpenTelemetry
        # bridge would look the global providers up on every request (~10 µs) to find none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    add_chat_route(app)  # first: FastAPI matches routes in order
    app.include_router(router)
    app.include_router(models_router)
    app.include_router(health_router)
    install_openapi(app)
    app.add_middleware(AccessLog, metrics=metrics)
    return app
