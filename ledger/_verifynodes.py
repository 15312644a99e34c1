"""Comparing recomputed Merkle nodes with the stored ones, range by range (floor 2).

Imported by verify's worker processes too, so it needs nothing beyond `sqlite3` and the pure tree
(no SQLAlchemy).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from ledger._tree import NodeId
from ledger._verify import Verifier
from ledger._verifyblocks import NodeCheck

__all__ = ["NODES_SQL", "check_chunk_nodes", "node_ranges", "same_nodes", "stored_nodes_match"]

NODES_SQL = (
    "SELECT hash, idx FROM ledger_merkle_nodes WHERE level = {} AND idx BETWEEN {} AND {} "
    "ORDER BY idx"
)
"""The stored nodes of one level over an index range (placeholders filled per driver)."""


def node_ranges(start: int, end: int) -> list[tuple[int, int, int]]:
    """(level, low, high) of the perfect nodes completed by appending leaves start..end-1."""
    spans = []
    level = 1
    while (end >> level) - 1 >= start >> level:
        spans.append((level, start >> level, (end >> level) - 1))
        level += 1
    return spans


def same_nodes(
    computed: Mapping[NodeId, bytes], level: int, low: int, high: int, stored: Iterable[Any]
) -> bool:
    """Whether the stored rows (hash, idx) of one level are exactly the computed nodes low..high."""
    expected = b"".join([computed[level, i] for i in range(low, high + 1)])
    return b"".join([bytes(r[0]) for r in stored]) == expected


def check_chunk_nodes(
    conn: sqlite3.Connection,
    verifier: Verifier,
    computed: Mapping[NodeId, bytes],
    start: int,
    stop: int,
) -> None:
    """Compare the Merkle nodes completed by the leaves start..stop-1 with the stored ones; the
    first difference becomes the verifier's problem."""
    if not computed or verifier.problem is not None:
        return
    end = min(stop, verifier.sequenced_size)
    nodes_sql = NODES_SQL.format("?", "?", "?")
    spans = [(s, conn.execute(nodes_sql, s).fetchall()) for s in node_ranges(start, end)]
    if not all(same_nodes(computed, *span, rows) for span, rows in spans):
        stored = {(s[0], r[1]): r[0] for s, rows in spans for r in rows}
        verifier.check_nodes(computed, stored)


def stored_nodes_match(conn: sqlite3.Connection, checks: Iterable[NodeCheck]) -> bool:
    """Whether the stored nodes are the expected ones (the checks of `ledger._verifyblocks`)."""
    sql = NODES_SQL.format("?", "?", "?")
    for level, first, last, expected in checks:
        stored = conn.execute(sql, (level, first, last)).fetchall()
        if b"".join([bytes(r[0]) for r in stored]) != expected:
            return False
    return True
