"""Streaming the rows of a whole ledger into the pure `Verifier` (floor 2).

SQLite: the whole run happens on one worker thread with its own `sqlite3` connection inside one
read transaction (a snapshot), so rows never cross threads chunk by chunk. PostgreSQL: asyncpg in
one REPEATABLE READ transaction, the next chunk fetched while the current one is checked.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from ledger._store import SQLITE_BUSY_TIMEOUT_MS, Store, translate_errors
from ledger._tree import NodeId
from ledger._verify import Verifier, VerifyReport

__all__ = ["verify_ledger"]

_CHECKPOINTS = (
    "SELECT tree_size, root_hash, verifier_key, note FROM ledger_checkpoints ORDER BY tree_size"
)
_ROWS = (
    "SELECT position, event_id, type, stream_id, stream_version, recorded_at_us, payload, "
    "payload_digest, attachments, prev_hash, chain_hash, leaf_hash FROM ledger_events "
    "WHERE position >= {} ORDER BY position LIMIT {}"
)
_NODES = "SELECT idx, hash FROM ledger_merkle_nodes WHERE level = {} AND idx BETWEEN {} AND {}"


def _ranges(computed: Iterable[NodeId]) -> dict[int, tuple[int, int]]:
    spans: dict[int, tuple[int, int]] = {}
    for level, index in computed:
        low, high = spans.get(level, (index, index))
        spans[level] = (min(low, index), max(high, index))
    return spans


def _verifier(
    rows: Sequence[Sequence[Any]], origin: str, trusted: Iterable[str] | None
) -> Verifier:
    return Verifier([(r[0], bytes(r[1]), r[2], r[3]) for r in rows], origin, trusted)


def _verify_sqlite(
    path: str, origin: str, chunk: int, trusted: Iterable[str] | None
) -> VerifyReport:
    with translate_errors():
        conn = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            isolation_level=None,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
        )
        try:
            conn.execute("BEGIN")
            verifier = _verifier(conn.execute(_CHECKPOINTS).fetchall(), origin, trusted)
            rows_sql, nodes_sql = _ROWS.format("?", "?"), _NODES.format("?", "?", "?")
            position = 0
            while verifier.problem is None:
                batch = conn.execute(rows_sql, (position, chunk)).fetchall()
                if not batch:
                    break
                computed = verifier.feed(batch)
                if computed:
                    stored: dict[NodeId, bytes] = {}
                    for level, (low, high) in _ranges(computed).items():
                        for index, digest in conn.execute(nodes_sql, (level, low, high)):
                            stored[level, index] = digest
                    verifier.check_nodes(computed, stored)
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
                rows_sql, nodes_sql = _ROWS.format("$1", "$2"), _NODES.format("$1", "$2", "$3")
                fetch: Callable[..., Awaitable[Sequence[Any]]] = pg.fetch
                batch = await fetch(rows_sql, 0, chunk)
                while batch and verifier.problem is None:
                    # asyncpg allows one query at a time per connection: fetch, then check.
                    computed = verifier.feed(batch)
                    if computed:
                        stored: dict[NodeId, bytes] = {}
                        for level, (low, high) in _ranges(computed).items():
                            for index, digest in await fetch(nodes_sql, level, low, high):
                                stored[level, index] = digest
                        verifier.check_nodes(computed, stored)
                    if verifier.problem is not None:
                        break
                    batch = await fetch(rows_sql, batch[-1][0] + 1, chunk)
                return verifier.finish()


async def verify_ledger(
    store: Store, origin: str, *, chunk: int, trusted_keys: Iterable[str] | None
) -> VerifyReport:
    """Verify the whole ledger in `store` (see `Verifier` for what is checked)."""
    trusted = None if trusted_keys is None else tuple(trusted_keys)
    if store.is_sqlite:
        path = store.url.database or ""
        return await asyncio.to_thread(_verify_sqlite, path, origin, chunk, trusted)
    return await _verify_pg(store, origin, chunk, trusted)
