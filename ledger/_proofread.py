"""Reading what an inclusion proof needs in two queries (floor 2): the event with the latest
checkpoint, then every node of the proof plan. SQLite runs both in one hop to the store's reader
thread; PostgreSQL on one pooled asyncpg connection."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from ledger._store import Store, translate_errors
from ledger._tree import NodeId, ProofPlan, assemble, inclusion_proof_plan
from ledger._treestore import SignedCheckpoint

__all__ = ["ProofRead", "read_inclusion"]

ProofRead = tuple[int, bytes, bytes, SignedCheckpoint | None, list[bytes] | None]
"""(position, event id, leaf hash, latest checkpoint, proof path) — the last two None when the
event is not covered by a checkpoint yet."""

_EVENT_AND_HEAD = (
    "SELECT e.position, e.event_id, e.leaf_hash, c.tree_size, c.root_hash, c.signed_at_us, "
    "c.verifier_key, c.note FROM ledger_events e LEFT JOIN "
    "(SELECT * FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1) c ON 1 = 1 "
    "WHERE e.{column} = ?"
)


def _nodes_query(plan: ProofPlan) -> tuple[str, list[int]]:
    leaves = [i for level, i in plan.nodes if level == 0]
    inner = [(level, i) for level, i in plan.nodes if level > 0]
    parts, params = [], []
    if leaves:
        parts.append(
            "SELECT 0, position, leaf_hash FROM ledger_events WHERE position IN "
            f"({', '.join('?' * len(leaves))})"
        )
        params += leaves
    if inner:
        parts.append(
            "SELECT level, idx, hash FROM ledger_merkle_nodes WHERE "
            + " OR ".join("(level = ? AND idx = ?)" for _ in inner)
        )
        params += [x for node in inner for x in node]
    return " UNION ALL ".join(parts), params


def _numbered(sql: str) -> str:
    numbers = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


def _split(row: Sequence[Any]) -> tuple[int, bytes, bytes, SignedCheckpoint | None]:
    head = None if row[3] is None else SignedCheckpoint(row[3], bytes(row[4]), *row[5:8])
    return row[0], bytes(row[1]), bytes(row[2]), head


def _sqlite(conn: sqlite3.Connection, column: str, value: object) -> ProofRead | None:
    row = conn.execute(_EVENT_AND_HEAD.format(column=column), (value,)).fetchone()
    if row is None:
        return None
    position, event_id, leaf, head = _split(row)
    if head is None or position >= head.tree_size:
        return position, event_id, leaf, head, None
    plan = inclusion_proof_plan(position, head.tree_size)
    sql, params = _nodes_query(plan)
    hashes: dict[NodeId, bytes] = {}
    if params:
        hashes = {(lv, i): h for lv, i, h in conn.execute(sql, params)}
    return position, event_id, leaf, head, assemble(plan, hashes)


async def read_inclusion(store: Store, column: str, value: object) -> ProofRead | None:
    """The event where `column` (position or event_id) = `value`, the latest checkpoint and the
    inclusion path against it; None when there is no such event."""
    if store.is_sqlite:
        return await store.sqlite_read(_sqlite, column, value)
    with translate_errors():
        async with store.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            async with pg.transaction(isolation="repeatable_read", readonly=True):
                row = await pg.fetchrow(_numbered(_EVENT_AND_HEAD.format(column=column)), value)
                if row is None:
                    return None
                position, event_id, leaf, head = _split(row)
                if head is None or position >= head.tree_size:
                    return position, event_id, leaf, head, None
                plan = inclusion_proof_plan(position, head.tree_size)
                sql, params = _nodes_query(plan)
                hashes: dict[NodeId, bytes] = {}
                if params:
                    rows = await pg.fetch(_numbered(sql), *params)
                    hashes = {(r[0], r[1]): bytes(r[2]) for r in rows}
                return position, event_id, leaf, head, assemble(plan, hashes)
