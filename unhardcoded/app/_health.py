"""`GET /healthz` (liveness) and `GET /readyz` (readiness) for load balancers and orchestrators.

Liveness answers from the process alone: a router whose database is briefly away is still alive
and must not be restarted for it. Readiness checks what serving a request needs — the database
answers, its schema is at the migrations' head, the signing key is loaded, a catalog is loaded —
and answers 503 naming each failed check, so that traffic goes elsewhere until it holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Connection

import migrations
from ledger import Ledger, LedgerError
from router.core import RouterError
from router.services.gateway import Gateway

__all__ = ["READY_CHECKS", "Readiness", "health_router", "migration_heads"]

READY_CHECKS = ("database", "migrations", "signing_key", "catalog")
"""The checks `/readyz` runs, in its answer's order."""

_CHECK_TIMEOUT_S = 5.0
"""Bound on the database checks: an unreachable server answers 503, not a hung probe."""

health_router = APIRouter()


def migration_heads() -> frozenset[str]:
    """The head revisions of the shipped migrations (what an up-to-date database records)."""
    return frozenset(ScriptDirectory(migrations.SCRIPT_LOCATION).get_heads())


def _current_heads(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


@dataclass(frozen=True, slots=True)
class Readiness:
    """What `/readyz` checks, built by the app's lifespan."""

    ledger: Ledger
    gateway: Gateway
    heads: frozenset[str]

    async def _database(self) -> frozenset[str]:
        async with asyncio.timeout(_CHECK_TIMEOUT_S):
            async with self.ledger.store.read() as conn:
                return await conn.run_sync(_current_heads)

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """(ready, the answer's body)."""
        checks: dict[str, str] = {}
        version: dict[str, str] = {}
        try:
            current = await self._database()
        except (LedgerError, TimeoutError, OSError) as exc:
            checks["database"] = f"unreachable: {exc or 'no answer in time'}"
            checks["migrations"] = "unknown: the database is unreachable"
        else:
            checks["database"] = "ok"
            if current == self.heads:
                checks["migrations"] = "ok"
            else:
                at = ", ".join(sorted(current)) or "none"
                checks["migrations"] = (
                    f"not at head: the database is at {at}, this version needs "
                    f"{', '.join(sorted(self.heads))} (run `unhardcoded db upgrade`)"
                )
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT_S):
                await self.ledger.check_signing_key()  # can this process sign the next checkpoint
        except (LedgerError, TimeoutError, OSError) as exc:
            checks["signing_key"] = f"not loaded: {exc or 'no answer in time'}"
        else:
            checks["signing_key"] = "ok"
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT_S):
                catalog = await self.gateway.catalog()
        except (LedgerError, RouterError, TimeoutError, OSError) as exc:
            checks["catalog"] = f"not loaded: {exc or 'no answer in time'}"
        else:
            checks["catalog"] = "ok"
            version["catalog_version"] = catalog.version
        ready = all(checks[name] == "ok" for name in READY_CHECKS)
        return ready, {"status": "ready" if ready else "not ready", "checks": checks, **version}


@health_router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> JSONResponse:
    """`{"status": "ok"}` whenever the process serves HTTP; touches nothing else."""
    return JSONResponse({"status": "ok"})


@health_router.get(
    "/readyz",
    summary="Readiness: database, migrations, signing key and catalog",
    responses={503: {"description": "A check failed; `checks` names it and why."}},
)
async def readyz(request: Request) -> JSONResponse:
    """`{"status": "ready", "checks": {"database", "migrations", "signing_key", "catalog"},
    "catalog_version"}`; 503 with `"status": "not ready"` when any check is not `"ok"`."""
    readiness: Readiness | None = getattr(request.app.state, "readiness", None)
    if readiness is None:
        return JSONResponse(
            {"status": "not ready", "checks": dict.fromkeys(READY_CHECKS, "starting")},
            status_code=503,
        )
    ready, body = await readiness.check()
    return JSONResponse(body, status_code=200 if ready else 503)
