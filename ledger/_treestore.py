"""The store-backed Merkle tree (floor 2): sequencing new leaves into stored perfect subtrees,
signing checkpoints, and serving proofs with one query for the nodes a proof plan names."""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger._checkpoint import Checkpoint, sign_checkpoint
from ledger._keys import SigningKey
from ledger._tables import checkpoints, events, merkle_nodes
from ledger._tree import Frontier, NodeId, ProofPlan, append_leaves, assemble, root_plan

__all__ = [
    "Batch",
    "Integrated",
    "SignedCheckpoint",
    "checkpoints_at",
    "fetch_nodes",
    "has_event",
    "integrate",
    "latest_checkpoint",
    "nodes_query",
    "numbered",
    "plan_hashes",
    "read_batch",
    "write_batch",
]


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A stored checkpoint: tree size, root hash, the signed note and the key that signed it."""

    tree_size: int
    root_hash: bytes
    signed_at_us: int
    verifier_key: str
    note: str


_CHECKPOINT_COLUMNS = (
    checkpoints.c.tree_size,
    checkpoints.c.root_hash,
    checkpoints.c.signed_at_us,
    checkpoints.c.verifier_key,
    checkpoints.c.note,
)


async def latest_checkpoint(conn: AsyncConnection) -> SignedCheckpoint | None:
    """The checkpoint with the largest tree size, or None before the first sequencing."""
    query = select(*_CHECKPOINT_COLUMNS).order_by(checkpoints.c.tree_size.desc()).limit(1)
    row = (await conn.execute(query)).first()
    return None if row is None else SignedCheckpoint(*row)


async def checkpoints_at(
    conn: AsyncConnection, sizes: Iterable[int | None]
) -> dict[int, SignedCheckpoint]:
    """The signed checkpoints at these tree sizes, by size (a size never signed is left out)."""
    query = select(*_CHECKPOINT_COLUMNS).where(checkpoints.c.tree_size.in_(list(sizes)))
    return {row[0]: SignedCheckpoint(*row) for row in await conn.execute(query)}


def nodes_query(ids: Collection[NodeId]) -> tuple[str, list[int]]:
    """The stored hashes of the nodes `ids` in ONE statement, rows (level, index, hash): level 0
    from the event rows, the rest from the nodes. (SQL with `?` placeholders, parameters)."""
    leaves = sorted({i for level, i in ids if level == 0})
    inner = sorted({(level, i) for level, i in ids if level > 0})
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


async def fetch_nodes(conn: AsyncConnection, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
    """The hashes of `ids` (`nodes_query`)."""
    sql, params = nodes_query(ids)
    if not params:
        return {}
    if conn.dialect.paramstyle == "numeric_dollar":
        sql = numbered(sql)
    rows: Iterable[Sequence[Any]] = await conn.exec_driver_sql(sql, tuple(params))
    return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}


async def plan_hashes(conn: AsyncConnection, plan: ProofPlan) -> list[bytes]:
    """Fetch what `plan` needs and assemble it."""
    return assemble(plan, await fetch_nodes(conn, plan.nodes))


@dataclass(frozen=True, slots=True)
class Batch:
    """One sequencing batch, read from one snapshot: the tree it extends and the leaves to add."""

    head: SignedCheckpoint | None
    frontier: Frontier
    leaves: list[bytes]


@dataclass(frozen=True, slots=True)
class Integrated:
    """A batch integrated into the tree and signed: what its short write inserts."""

    base_size: int | None
    """The tree size the batch extends (None: the ledger's first checkpoint)."""
    nodes: list[tuple[int, int, bytes]]
    """(level, idx, hash) of every perfect subtree the batch completed."""
    checkpoint: SignedCheckpoint
    added: int


async def has_event(conn: AsyncConnection, position: int) -> bool:
    """Whether the event at `position` is recorded (positions are gapless)."""
    found = await conn.scalar(select(events.c.position).where(events.c.position == position))
    return found is not None


async def read_batch(
    conn: AsyncConnection, head: SignedCheckpoint | None, max_leaves: int
) -> Batch:
    """The frontier of the tree at `head` and the hashes of up to `max_leaves` leaves after it,
    read in `conn`'s snapshot (no lock: appends go on)."""
    size = head.tree_size if head else 0
    hashes: Mapping[NodeId, bytes] = await fetch_nodes(conn, root_plan(size).nodes)
    leaves = (
        await conn.execute(
            select(events.c.leaf_hash)
            # Bounded on both sides (positions are gapless): the primary key, with or without
            # statistics (see `Ledger.read`).
            .where(events.c.position >= size, events.c.position < size + max_leaves)
            .order_by(events.c.position)
            .limit(max_leaves)
        )
    ).scalars()
    return Batch(head, Frontier.from_nodes(size, hashes), [bytes(h) for h in leaves])


def integrate(batch: Batch, key: SigningKey, origin: str) -> Integrated:
    """Append the batch's leaves to its tree and sign the new head: CPU only (hashing and
    signing), so the sequencer runs it off the event loop."""
    frontier, nodes = append_leaves(batch.frontier, batch.leaves)
    root = frontier.root()
    note = sign_checkpoint(Checkpoint(origin, frontier.size, root), key)
    signed = SignedCheckpoint(frontier.size, root, time.time_ns() // 1000, key.verifier_key(), note)
    rows = [(level, idx, h) for (level, idx), h in nodes.items()]
    base = None if batch.head is None else batch.head.tree_size
    return Integrated(base, rows, signed, len(batch.leaves))


async def write_batch(conn: AsyncConnection, done: Integrated) -> bool:
    """Insert the batch's nodes and checkpoint in `conn`'s transaction, unless another sequencer
    extended the tree since the batch was read (then False: nothing written)."""
    current = await latest_checkpoint(conn)
    if (None if current is None else current.tree_size) != done.base_size:
        return False
    if done.nodes:
        # One driver call with plain tuples: SQLAlchemy's per-row parameter handling of
        # thousands of nodes cost more than the insert itself, on the event loop and while the
        # transaction held the write lock.
        statement = str(insert(merkle_nodes).compile(dialect=conn.dialect))
        await conn.exec_driver_sql(statement, done.nodes)
    signed = done.checkpoint
    await conn.execute(
        insert(checkpoints),
        [
            {
                "tree_size": signed.tree_size,
                "root_hash": signed.root_hash,
                "signed_at_us": signed.signed_at_us,
                "verifier_key": signed.verifier_key,
                "note": signed.note,
            }
        ],
    )
    return True
