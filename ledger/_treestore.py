"""The store-backed Merkle tree (floor 2): sequencing new leaves into stored perfect subtrees,
signing checkpoints, and serving proofs with one query for the nodes a proof plan names."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import and_, insert, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger._checkpoint import Checkpoint, sign_checkpoint
from ledger._keys import SigningKey
from ledger._tables import checkpoints, events, merkle_nodes
from ledger._tree import Frontier, NodeId, ProofPlan, append_leaves, assemble, root_plan

__all__ = ["SignedCheckpoint", "fetch_nodes", "latest_checkpoint", "plan_hashes", "sequence_batch"]


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A stored checkpoint: tree size, root hash, the signed note and the key that signed it."""

    tree_size: int
    root_hash: bytes
    signed_at_us: int
    verifier_key: str
    note: str


def _row_to_checkpoint(row: tuple[int, bytes, int, str, str]) -> SignedCheckpoint:
    return SignedCheckpoint(row[0], row[1], row[2], row[3], row[4])


async def latest_checkpoint(conn: AsyncConnection) -> SignedCheckpoint | None:
    """The checkpoint with the largest tree size, or None before the first sequencing."""
    row = (
        await conn.execute(
            select(
                checkpoints.c.tree_size,
                checkpoints.c.root_hash,
                checkpoints.c.signed_at_us,
                checkpoints.c.verifier_key,
                checkpoints.c.note,
            )
            .order_by(checkpoints.c.tree_size.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else _row_to_checkpoint(tuple(row))


async def fetch_nodes(conn: AsyncConnection, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """The hashes of `ids` in ONE query: level 0 from the event rows, the rest from the nodes."""
    leaves = sorted({i for level, i in ids if level == 0})
    inner = sorted({(level, i) for level, i in ids if level > 0})
    parts = []
    if leaves:
        parts.append(
            select(literal(0).label("level"), events.c.position, events.c.leaf_hash).where(
                events.c.position.in_(leaves)
            )
        )
    if inner:
        parts.append(
            select(merkle_nodes.c.level, merkle_nodes.c.idx, merkle_nodes.c.hash).where(
                or_(*(and_(merkle_nodes.c.level == lv, merkle_nodes.c.idx == i) for lv, i in inner))
            )
        )
    if not parts:
        return {}
    query = parts[0] if len(parts) == 1 else union_all(*parts)
    return {(int(lv), int(i)): bytes(h) for lv, i, h in (await conn.execute(query)).all()}


async def plan_hashes(conn: AsyncConnection, plan: ProofPlan) -> list[bytes]:
    """Fetch what `plan` needs and assemble it."""
    return assemble(plan, await fetch_nodes(conn, plan.nodes))


async def sequence_batch(
    conn: AsyncConnection, key: SigningKey, origin: str, max_leaves: int
) -> tuple[SignedCheckpoint | None, int]:
    """Integrate up to `max_leaves` unsequenced events into the tree and sign a checkpoint.

    Returns the latest checkpoint afterwards and how many leaves this call integrated (0 when
    the tree was already up to date: then no new checkpoint is signed, except the very first).
    """
    current = await latest_checkpoint(conn)
    size = current.tree_size if current else 0
    hashes: Mapping[NodeId, bytes] = await fetch_nodes(conn, root_plan(size).nodes)
    frontier = Frontier.from_nodes(size, hashes)
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
    new_frontier, nodes = append_leaves(frontier, (bytes(h) for h in leaves))
    added = new_frontier.size - size
    if added == 0 and current is not None:
        return current, 0
    if nodes:
        await conn.execute(
            insert(merkle_nodes),
            [{"level": lv, "idx": i, "hash": h} for (lv, i), h in nodes.items()],
        )
    root = new_frontier.root()
    note = sign_checkpoint(Checkpoint(origin, new_frontier.size, root), key)
    signed = SignedCheckpoint(
        new_frontier.size, root, time.time_ns() // 1000, key.verifier_key(), note
    )
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
    return signed, added
