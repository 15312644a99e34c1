"""Idempotency keys: a request retried with the same `Idempotency-Key` gets the first one's answer.

As Stripe's and OpenAI's APIs do it: the key is scoped to the tenant of the authenticated API
key; the first request *claims* it (INSERT … ON CONFLICT DO NOTHING on the primary key: tenant,
SHA-256 of the key; atomic across routers sharing one database, SQLite or PostgreSQL), then
stores its answer; a retry within the window gets that answer back, without a second decision
or upstream call.
A retry while the first is still in flight waits for it (bounded), then is told to come back
(`IdempotencyInFlightError`). The same key on a different request body is refused
(`IdempotencyKeyReusedError`). Only the key's digest is stored; answers the gateway must not
keep (streams, `no_log` policies) are recorded as answered, without their body.

The window counts from the answer. A claim left in flight by a router that died is taken over
once its lease ran out (never by the window: its answer may still come); an expired answer is
taken over by the next claim of its key, and purged by later claims.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Table, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from router.services.decisions import request_digest
from router.services.gateway._errors import (
    BadRequestError,
    IdempotencyInFlightError,
    IdempotencyKeyReusedError,
    IdempotencyUnavailableError,
    IdempotentAnswerNotStoredError,
)
from router.services.gateway._tables import idempotency_keys

__all__ = [
    "IDEMPOTENCY_HEADER",
    "IN_FLIGHT_LEASE_S",
    "Claim",
    "IdempotencyStore",
    "StoredAnswer",
    "idempotency_key_sha256",
]

log = logging.getLogger("router.services.gateway")

IDEMPOTENCY_HEADER: Final = "idempotency-key"
#: Stripe's limit; a UUID (what SDKs generate) is 36 characters.
MAX_KEY_LENGTH: Final = 255
#: How long a claim stays in flight before another router may take it over: longer than any
#: answer takes (a plan of attempts with their timeouts), so only a router that died loses it.
IN_FLIGHT_LEASE_S: Final = 600.0
#: What a retry told `idempotency_in_flight` is asked to wait (`retry-after`).
RETRY_AFTER_S: Final = 1.0
_PURGE_EVERY_S: Final = 60.0
_POLL_FIRST_S: Final = 0.02
_POLL_MAX_S: Final = 0.25

_IN_FLIGHT: Final = "in_flight"
_DONE: Final = "done"  # answered, the answer is stored
_UNSTORED: Final = "unstored"  # answered, the answer is not stored (stream, no_log)


def idempotency_key_sha256(key: str) -> bytes:
    """The SHA-256 of a valid key; `BadRequestError` (`invalid_idempotency_key`) unless it is 1
    to 255 printable ASCII characters (what a header carries unmangled)."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise BadRequestError(
            f"the Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable ASCII "
            f"characters (found {len(key)} characters)",
            code="invalid_idempotency_key",
        )
    return hashlib.sha256(key.encode("ascii")).digest()


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key: answer it, then `finish` (or `release` to let a retry in)."""

    tenant: str
    key_sha256: bytes
    claim_id: str

    @property
    def key_digest(self) -> str:
        """The key's SHA-256 in hex, as the decision records it."""
        return self.key_sha256.hex()


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The first request's answer, to be sent again: status, the headers that matter, body."""

    decision_id: str | None
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Row:
    request_sha256: bytes
    state: str
    decision_id: str | None
    status: int | None
    headers: str | None
    body: bytes | None
    claimed_at_us: int
    expires_at_us: int


class IdempotencyStore:
    """Claims, answers and replays of idempotency keys in the gateway's database (one per
    process; any number of processes may share the database). `window_s`: how long an answer
    is kept; `wait_s`: how long a retry waits for a claim in flight."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        window_s: float,
        wait_s: float,
        lease_s: float = IN_FLIGHT_LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self.window_s = window_s
        self.wait_s = wait_s
        self.lease_s = lease_s
        self._clock = clock
        self._next_purge = 0.0

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    async def claim(
        self, tenant: str, key: str, request: Mapping[str, Any]
    ) -> Claim | StoredAnswer:
        """Claim `key` for `request` (the whole JSON body), or the stored answer of the request
        that claimed it first. Raises `IdempotencyKeyReusedError` for another body under the
        same key, `IdempotentAnswerNotStoredError` when the first answer was not kept, and
        `IdempotencyInFlightError` when the first is still in flight after `wait_s`."""
        key_sha = idempotency_key_sha256(key)
        request_sha = bytes.fromhex(request_digest(request)[0])
        deadline = time.monotonic() + self.wait_s
        pause = _POLL_FIRST_S
        try:
            await self._purge()
            found = await self._claim_once(tenant, key_sha, request_sha)
            while True:
                if isinstance(found, Claim):
                    return found
                if found is None or self._stale(found):  # gone, expired or abandoned meanwhile
                    found = await self._claim_once(tenant, key_sha, request_sha)
                    continue
                answer = _answered(found, request_sha)
                if answer is not None:
                    return answer
                if time.monotonic() + pause > deadline:
                    raise IdempotencyInFlightError(
                        "a request with this Idempotency-Key is still in flight: retry after "
                        f"{RETRY_AFTER_S:g} s to get its answer",
                        retry_after_s=RETRY_AFTER_S,
                    )
                await asyncio.sleep(pause)
                pause = min(pause * 2, _POLL_MAX_S)
                # Waiting only reads: no write lock is taken while the first request works.
                found = await self._read(tenant, key_sha)
        except (SQLAlchemyError, OSError) as exc:
            raise IdempotencyUnavailableError(f"idempotency keys unavailable: {exc}") from exc

    def _stale(self, row: _Row) -> bool:
        now = self._now_us()
        if row.state == _IN_FLIGHT:
            return row.claimed_at_us <= now - int(self.lease_s * 1_000_000)
        return row.expires_at_us <= now

    def _stale_rows(self, now: int) -> ColumnElement[bool]:
        """The SQL condition of `_stale`: an answer past its window, or a claim past its
        lease (a claim in flight never expires with the window: its answer is still coming)."""
        table = idempotency_keys
        return or_(
            and_(table.c.state != _IN_FLIGHT, table.c.expires_at_us <= now),
            and_(
                table.c.state == _IN_FLIGHT,
                table.c.claimed_at_us <= now - int(self.lease_s * 1_000_000),
            ),
        )

    async def _claim_once(
        self, tenant: str, key_sha: bytes, request_sha: bytes
    ) -> Claim | _Row | None:
        now = self._now_us()
        claim = Claim(tenant, key_sha, secrets.token_hex(16))
        values = {
            "claim_id": claim.claim_id,
            "request_sha256": request_sha,
            "state": _IN_FLIGHT,
            "decision_id": None,
            "status": None,
            "headers": None,
            "body": None,
            "claimed_at_us": now,
            "expires_at_us": now + int(self.window_s * 1_000_000),
        }
        table = idempotency_keys
        this_key = and_(table.c.tenant == tenant, table.c.key_sha256 == key_sha)
        # One transaction: a new key costs one commit, a replay reads without writing.
        async with self._engine.begin() as conn:
            fresh = _insert(conn.dialect.name, table).values(
                tenant=tenant, key_sha256=key_sha, **values
            )
            inserted = await conn.execute(fresh.on_conflict_do_nothing())
            if inserted.rowcount == 1:
                return claim
            row = await _select(conn, this_key)
            if row is None or not self._stale(row):
                return row
            # One UPDATE decides between racing takeovers: the row no longer matches the
            # condition for the second one (PostgreSQL re-checks it after the first commits).
            taken = await conn.execute(
                update(table).where(this_key, self._stale_rows(now)).values(**values)
            )
            if taken.rowcount == 1:
                return claim
            return await _select(conn, this_key)

    async def _read(self, tenant: str, key_sha: bytes) -> _Row | None:
        table = idempotency_keys
        async with self._engine.connect() as conn:
            return await _select(
                conn, and_(table.c.tenant == tenant, table.c.key_sha256 == key_sha)
            )

    async def finish(
        self,
        claim: Claim,
        *,
        decision_id: str | None,
        status: int,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> None:
        """Store the answer of a claimed request; `body` None: answered, but not replayable.
        A failure is logged, not raised: the answer is going out anyway, and a retry then waits
        for the claim's lease."""
        table = idempotency_keys
        values: dict[str, Any] = {
            # The window counts from the answer: a retry has all of it to come back.
            "expires_at_us": self._now_us() + int(self.window_s * 1_000_000),
            "state": _UNSTORED if body is None else _DONE,
            "decision_id": decision_id,
            "status": status,
            "headers": json.dumps(dict(headers), sort_keys=True),
            "body": body,
        }
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    update(table).where(table.c.claim_id == claim.claim_id).values(**values)
                )
        except (SQLAlchemyError, OSError) as exc:
            log.error("storing the answer of an idempotency key failed: %s", exc)
            return
        if result.rowcount != 1:
            log.warning("an idempotency key's claim was taken over before its answer was stored")

    async def release(self, claim: Claim) -> None:
        """Give the key up (the request ended in a failure worth retrying): the next request
        with it is a new claim. A failure is logged; the claim then expires with its lease."""
        table = idempotency_keys
        try:
            async with self._engine.begin() as conn:
                await conn.execute(delete(table).where(table.c.claim_id == claim.claim_id))
        except (SQLAlchemyError, OSError) as exc:
            log.error("releasing an idempotency key failed: %s", exc)

    async def _purge(self) -> None:
        """Delete expired rows, at most once a minute per process."""
        now = self._clock()
        if now < self._next_purge:
            return
        self._next_purge = now + _PURGE_EVERY_S
        table = idempotency_keys
        async with self._engine.begin() as conn:
            await conn.execute(delete(table).where(self._stale_rows(self._now_us())))


def _insert(dialect: str, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING (SQLite and PostgreSQL)."""
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)


async def _select(conn: AsyncConnection, this_key: ColumnElement[bool]) -> _Row | None:
    table = idempotency_keys
    row = (
        await conn.execute(
            select(
                table.c.request_sha256,
                table.c.state,
                table.c.decision_id,
                table.c.status,
                table.c.headers,
                table.c.body,
                table.c.claimed_at_us,
                table.c.expires_at_us,
            ).where(this_key)
        )
    ).first()
    return None if row is None else _Row(*row)


def _answered(row: _Row, request_sha: bytes) -> StoredAnswer | None:
    """The stored answer of an answered row; None while in flight. Raises for another request
    under the same key, and for an answer that was not kept."""
    if row.request_sha256 != request_sha:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used for a different request body within its window: "
            "use a new key for a new request"
        )
    if row.state == _IN_FLIGHT:
        return None
    if row.state == _UNSTORED or row.body is None or row.status is None:
        decision = "" if row.decision_id is None else f" (decision {row.decision_id})"
        raise IdempotentAnswerNotStoredError(
            f"the request with this Idempotency-Key was answered{decision}, but its answer is "
            "not kept for replay (a stream, or a policy that requires no_log): read the "
            "decision with GET /x/decisions/{id}",
            decision_id=row.decision_id,
        )
    headers = json.loads(row.headers) if row.headers else {}
    return StoredAnswer(row.decision_id, row.status, headers, row.body)
