"""Reading what an inclusion proof needs in two queries (floor 2): the event with the latest
checkpoint, then every node of the proof plan. The SQL is here; each backend runs it its way
(SQLite in one hop to the store's reader thread, PostgreSQL on one pooled asyncpg connection)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ledger._tree import ProofPlan
from ledger._treestore import SignedCheckpoint

__all__ = ["EVENT_AND_HEAD", "ProofRead", "nodes_query", "numbered", "split"]

ProofRead = tuple[int, bytes, bytes, SignedCheckpoint | None, list[bytes] | None]
"""(position, event id, leaf hash, latest checkpoint, proof path) — the last two None when the
event is not covered by a checkpoint yet."""

EVENT_AND_HEAD = (
    "SELECT e.position, e.event_id, e.leaf_hash, c.tree_size, c.root_hash, c.signed_at_us, "
    "c.verifier_key, c.note FROM ledger_events e LEFT JOIN "
    "(SELECT * FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1) c ON 1 = 1 "
    "WHERE e.{column} = ?"
)
"""The event (by `column`, position or event_id) and the latest checkpoint, `?` placeholders."""


def nodes_query(plan: ProofPlan) -> tuple[str, list[int]]:
    """The stored hashes of every node of `plan`: (SQL with `?` placeholders, parameters)."""
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


def numbered(sql: str) -> str:
    """`sql` with `$1`, `$2`, … (asyncpg) for its `?` placeholders."""
    numbers = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


def split(row: Sequence[Any]) -> tuple[int, bytes, bytes, SignedCheckpoint | None]:
    """(position, event id, leaf hash, latest checkpoint) of an `EVENT_AND_HEAD` row."""
    head = None if row[3] is None else SignedCheckpoint(row[3], bytes(row[4]), *row[5:8])
    return row[0], bytes(row[1]), bytes(row[2]), head
