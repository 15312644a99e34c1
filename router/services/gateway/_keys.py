"""Callers and tenants: API keys (stored hashed) mapping to a tenant and scopes.

A key reads `uhk_<key id>_<secret>`: the id (12 hex digits) finds the row, the secret (32 random
bytes, URL-safe base64) is checked by comparing SHA-256 digests in constant time. Only the digest
is stored; the full key is shown once, when it is created.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from router.services.gateway._errors import (
    AuthenticationError,
    KeyStoreError,
    KeyStoreUnavailableError,
)
from router.services.gateway._tables import api_keys

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "ApiKey",
    "CreatedKey",
    "KeyStore",
    "Principal",
    "Scope",
    "parse_scopes",
]

Scope = Literal["route", "read:own", "read:all", "admin"]
#: `route`: call /v1/chat/completions and /x/rank; `read:own`: read the decisions of the key's
#: tenant; `read:all`: read every tenant's decisions; `admin`: everything.
SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)
KEY_PREFIX: Final = "uhk_"
_KEY = re.compile(r"^uhk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a tenant and the scopes of the key used (`key_id` for logs)."""

    tenant: str
    scopes: frozenset[Scope]
    key_id: str

    def can(self, scope: Scope) -> bool:
        """Whether the key holds `scope` (admin holds every scope; read:all includes read:own)."""
        if "admin" in self.scopes or scope in self.scopes:
            return True
        return scope == "read:own" and "read:all" in self.scopes

    def sees_tenant(self, tenant: str) -> bool:
        """Whether this caller may read decisions of `tenant`."""
        if self.can("read:all"):
            return True
        return self.can("read:own") and tenant == self.tenant


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    tenant: str
    scopes: tuple[Scope, ...]
    label: str
    created_at_us: int
    revoked_at_us: int | None

    def to_json(self) -> dict[str, object]:
        """JSON-able listing row."""
        return {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "scopes": list(self.scopes),
            "label": self.label,
            "created_at_us": self.created_at_us,
            "revoked_at_us": self.revoked_at_us,
        }


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: `secret` is the full key string, shown once and never stored."""

    key: ApiKey
    secret: str


def parse_scopes(values: Iterable[str]) -> tuple[Scope, ...]:
    """Validated, de-duplicated scopes in canonical order; `KeyStoreError` on an unknown one."""
    given = set()
    for value in values:
        for part in value.replace(",", " ").split():
            if part not in SCOPES:
                raise KeyStoreError(f"unknown scope {part!r} (expected one of {', '.join(SCOPES)})")
            given.add(part)
    if not given:
        raise KeyStoreError(f"a key needs at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in given)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _row_key(row: Any) -> ApiKey:
    scopes = tuple(s for s in SCOPES if s in str(row.scopes).split())
    return ApiKey(
        key_id=str(row.key_id),
        tenant=str(row.tenant),
        scopes=scopes,
        label=str(row.label),
        created_at_us=int(row.created_at_us),
        revoked_at_us=None if row.revoked_at_us is None else int(row.revoked_at_us),
    )


@asynccontextmanager
async def _database() -> AsyncIterator[None]:
    """Driver errors (unreachable, not migrated) become `KeyStoreUnavailableError`."""
    try:
        yield
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        raise KeyStoreUnavailableError(_describe(exc)) from exc
    except Exception as exc:
        # asyncpg's errors do not share a base with the others; recognise them by module.
        if type(exc).__module__.startswith("asyncpg"):
            raise KeyStoreUnavailableError(_describe(exc)) from exc
        raise


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return f"the API keys are unavailable: {lines[0] if lines else type(exc).__name__}"


class KeyStore:
    """The API keys of one database, over the engine the composition root opened on it (the
    table comes from the migrations; keys never touch the ledger's write lock).

    `authenticate` caches positive lookups for `cache_ttl_s` seconds, so a key revoked from another
    process stops working within that time (immediately in this process).
    """

    def __init__(self, engine: AsyncEngine, *, cache_ttl_s: float = 2.0) -> None:
        self._engine = engine
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[float, bytes, Principal]] = {}
        # One lookup per key id at a time: concurrent requests whose cache entry expired together
        # share it instead of each reading the table.
        self._loading: dict[str, asyncio.Future[Any]] = {}

    async def create(self, tenant: str, scopes: Iterable[str], label: str = "") -> CreatedKey:
        """A new key for `tenant` with `scopes`; the returned secret is never stored."""
        if not _TENANT.match(tenant):
            raise KeyStoreError(
                f"tenant {tenant!r} must be 1-128 characters of letters, digits and ._:@- "
                "(starting with a letter or digit)"
            )
        if len(label) > 200:
            raise KeyStoreError("label is longer than 200 characters")
        checked = parse_scopes(scopes)
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        created = time.time_ns() // 1000
        async with self._write() as conn:
            await conn.execute(
                api_keys.insert().values(
                    key_id=key_id,
                    tenant=tenant,
                    scopes=" ".join(checked),
                    secret_sha256=_digest(secret),
                    label=label,
                    created_at_us=created,
                    revoked_at_us=None,
                )
            )
        return CreatedKey(ApiKey(key_id, tenant, checked, label, created, None), secret)

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (or one tenant's), oldest first, without secrets."""
        query = select(api_keys).order_by(api_keys.c.created_at_us, api_keys.c.key_id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        async with self._read() as conn:
            return [_row_key(row) for row in (await conn.execute(query)).all()]

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good (idempotent); `KeyStoreError` if there is no such key."""
        async with self._write() as conn:
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at_us.is_(None))
                .values(revoked_at_us=time.time_ns() // 1000)
            )
            row = (await conn.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()
        self._cache.pop(key_id, None)
        self._loading.pop(key_id, None)  # a lookup begun before the revocation is not cached
        if row is None:
            raise KeyStoreError(f"no API key {key_id!r}")
        return _row_key(row)

    async def authenticate(self, presented: str | None) -> Principal:
        """The principal of a presented key; `AuthenticationError` (never saying why in detail
        beyond missing/malformed/invalid, and never echoing the key)."""
        if not presented:
            raise AuthenticationError("missing API key: send it as 'Authorization: Bearer uhk_…'")
        match = _KEY.match(presented)
        if match is None:
            raise AuthenticationError("malformed API key (expected uhk_<id>_<secret>)")
        key_id = match.group(1)
        digest = _digest(presented)
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            if hmac.compare_digest(cached[1], digest):
                return cached[2]
            raise AuthenticationError("invalid or revoked API key")
        loading = self._loading.get(key_id)
        if loading is None:
            loading = asyncio.ensure_future(self._lookup(key_id))
            self._loading[key_id] = loading
            loading.add_done_callback(lambda done: self._loaded(key_id, done))
        row = await asyncio.shield(loading)
        if (
            row is None
            or row.revoked_at_us is not None
            or not hmac.compare_digest(bytes(row.secret_sha256), digest)
        ):
            raise AuthenticationError("invalid or revoked API key")
        key = _row_key(row)
        principal = Principal(key.tenant, frozenset(key.scopes), key.key_id)
        self._cache[key_id] = (now + self._ttl, digest, principal)
        return principal

    def _loaded(self, key_id: str, done: asyncio.Future[Any]) -> None:
        if self._loading.get(key_id) is done:
            del self._loading[key_id]
        if not done.cancelled():
            done.exception()  # retrieved here; every waiter re-raises it itself

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with _database(), self._engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with _database(), self._engine.begin() as conn:
            yield conn

    async def _lookup(self, key_id: str) -> Any:
        async with self._read() as conn:
            return (await conn.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()
