"""Streaming the rows of a whole ledger into the pure `Verifier` (floor 2).

SQLite: the whole run happens on one worker thread with its own `sqlite3` connection inside one
read transaction (a snapshot), so rows never cross threads chunk by chunk. PostgreSQL: asyncpg in
one REPEATABLE READ transaction, the next chunk fetched while the current one is checked.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from ledger._store import SQLITE_BUSY_TIMEOUT_MS, Store, translate_errors
from ledger._verify import Verifier, VerifyReport
from ledger._verifynodes import NODES_SQL, check_chunk_nodes, node_ranges, same_nodes

PARALLEL_MIN_EVENTS = 200_000
"""Below this many events, `verify` on SQLite stays in one process by default."""

__all__ = [
    "PARALLEL_MIN_EVENTS",
    "open_verifier",
    "verify_ledger",
    "verify_sqlite",
]

_CHECKPOINTS = (
    "SELECT tree_size, root_hash, verifier_key, note FROM ledger_checkpoints ORDER BY tree_size"
)
_PG_ROWS = (
    "SELECT position, event_id, type, stream_id, stream_version, recorded_at_us, payload, "
    "payload_digest, attachments, prev_hash, chain_hash, leaf_hash FROM ledger_events "
    "ORDER BY position"
)
_ROWS = (
    "SELECT position, event_id, type, stream_id, stream_version, recorded_at_us, payload, "
    "payload_digest, attachments, prev_hash, chain_hash, leaf_hash FROM ledger_events "
    "WHERE position >= {} ORDER BY position LIMIT {}"
)


def _verifier(
    rows: Sequence[Sequence[Any]], origin: str, trusted: Iterable[str] | None
) -> Verifier:
    return Verifier([(r[0], bytes(r[1]), r[2], r[3]) for r in rows], origin, trusted)


def open_verifier(conn: sqlite3.Connection, origin: str, trusted: Iterable[str] | None) -> Verifier:
    """A `Verifier` loaded with the signed checkpoints (inside `conn`'s read transaction)."""
    return _verifier(conn.execute(_CHECKPOINTS).fetchall(), origin, trusted)


def verify_sqlite(
    path: str, origin: str, chunk: int, trusted: Iterable[str] | None
) -> VerifyReport:
    """The sequential verify of a SQLite ledger, in one read transaction on this thread."""
    with translate_errors():
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
        )
        try:
            conn.execute("PRAGMA mmap_size=1073741824")  # fewer copies on a long scan
            conn.execute("BEGIN")
            verifier = open_verifier(conn, origin, trusted)
            rows_sql = _ROWS.format("?", "?")
            position = 0
            while verifier.problem is None:
                batch = conn.execute(rows_sql, (position, chunk)).fetchall()
                if not batch:
                    break
                computed = verifier.feed(batch)
                check_chunk_nodes(conn, verifier, computed, position, batch[-1][0] + 1)
                position = batch[-1][0] + 1
            conn.execute("COMMIT")
            return verifier.finish()
        finally:
            conn.close()


async def _verify_pg(
    store: Store, origin: str, chunk: int, trusted: Iterable[str] | None
) -> VerifyReport:
    with translate_errors():
        async with store.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            async with pg.transaction(isolation="repeatable_read", readonly=True):
                verifier = _verifier(await pg.fetch(_CHECKPOINTS), origin, trusted)
                nodes_sql = NODES_SQL.format("$1", "$2", "$3")
                fetch: Callable[..., Awaitable[Sequence[Any]]] = pg.fetch
                # One server-side cursor: planned for a fast start, it walks the primary key (a
                # LIMIT query per chunk can be planned as a scan and sort of the rest of the
                # table while it has no statistics). The server reads the next chunk while this
                # process checks the current one.
                cursor = await pg.cursor(_PG_ROWS)
                position = 0
                batch = await cursor.fetch(chunk)
                while batch and verifier.problem is None:
                    ahead = asyncio.ensure_future(cursor.fetch(chunk))
                    await asyncio.sleep(0)  # let the FETCH go out before the CPU-bound check
                    computed = verifier.feed(batch)
                    following = await ahead  # the connection is free again for the nodes
                    end = min(batch[-1][0] + 1, verifier.sequenced_size)
                    if computed and verifier.problem is None:
                        spans = [
                            (s, await fetch(nodes_sql, *s)) for s in node_ranges(position, end)
                        ]
                        if not all(same_nodes(computed, *span, rows) for span, rows in spans):
                            stored = {(s[0], r[1]): bytes(r[0]) for s, rows in spans for r in rows}
                            verifier.check_nodes(computed, stored)
                    position = batch[-1][0] + 1
                    batch = following
                return verifier.finish()


async def verify_ledger(
    store: Store,
    origin: str,
    *,
    chunk: int,
    trusted_keys: Iterable[str] | None,
    workers: int | None = 1,
) -> VerifyReport:
    """Verify the whole ledger in `store` (see `Verifier` for what is checked).

    SQLite: with `workers` > 1, split over that many processes (`ledger._verifypar`); None =
    one per CPU when the ledger has at least `PARALLEL_MIN_EVENTS` events. PostgreSQL: one
    process.
    """
    trusted = None if trusted_keys is None else tuple(trusted_keys)
    if store.is_sqlite:
        path = store.url.database or ""
        floor = PARALLEL_MIN_EVENTS if workers is None else 0
        count = (os.cpu_count() or 1) if workers is None else workers
        if count > 1:
            from ledger._verifypar import verify_sqlite_parallel

            return await asyncio.to_thread(
                verify_sqlite_parallel, path, origin, chunk, trusted, count, floor
            )
        return await asyncio.to_thread(verify_sqlite, path, origin, chunk, trusted)
    return await _verify_pg(store, origin, chunk, trusted)
