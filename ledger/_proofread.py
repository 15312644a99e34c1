"""The proof side of the ledger (floor 2): signed checkpoints, inclusion and consistency proofs
read from the store.

One inclusion proof (`Ledger.inclusion_proof`) takes two queries: the event with the latest
checkpoint, then every node of its proof plan. The SQL is here; each backend runs it its way
(SQLite in one hop to the store's reader thread, PostgreSQL on one pooled asyncpg connection).

Many proofs against one tree size (`Ledger.inclusion_proofs`: a bundle needs one for each of tens
of thousands of events) share most of their nodes: they are planned together
(`ledger._tree.inclusion_plans`), every shared element is folded once, and each level's nodes are
read with a few range queries (`level = L AND idx BETWEEN lo AND hi`, leaves from the event
rows). The proofs are exactly `inclusion_proof_plan` + `assemble`'s (tests compare them)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger._errors import EventNotFoundError, InvalidEventError, MerkleError, NotSequencedError
from ledger._proofs import ConsistencyProof, InclusionProof
from ledger._query import ref_column
from ledger._tables import events, merkle_nodes
from ledger._tree import (
    NodeId,
    ProofPlan,
    assemble,
    consistency_proof_plan,
    inclusion_plans,
    inclusion_proof_plan,
)
from ledger._treestore import SignedCheckpoint, checkpoints_at, latest_checkpoint, plan_hashes

if TYPE_CHECKING:
    from ledger._store import ProofRead, Store

__all__ = [
    "EVENT_AND_HEAD",
    "InclusionProofBundle",
    "ProofReads",
    "plan_of",
    "proof_read",
    "read_inclusion_proofs",
]

Found = tuple[int, bytes, bytes, SignedCheckpoint | None]
"""(position, event id, leaf hash, latest checkpoint) of an event."""


EVENT_AND_HEAD = (
    "SELECT e.position, e.event_id, e.leaf_hash, c.tree_size, c.root_hash, c.signed_at_us, "
    "c.verifier_key, c.note FROM ledger_events e LEFT JOIN "
    "(SELECT * FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1) c ON 1 = 1 "
    "WHERE e.{column} = ?"
)
"""The event (by `column`, position or event_id) and the latest checkpoint, `?` placeholders."""


def plan_of(row: Sequence[Any]) -> tuple[Found, ProofPlan | None]:
    """The event and latest checkpoint of an `EVENT_AND_HEAD` row, and the plan of the event's
    inclusion proof (None when the checkpoint does not cover the event)."""
    head = None if row[3] is None else SignedCheckpoint(row[3], bytes(row[4]), *row[5:8])
    position = row[0]
    found = (position, bytes(row[1]), bytes(row[2]), head)
    if head is None or position >= head.tree_size:
        return found, None
    return found, inclusion_proof_plan(position, head.tree_size)


def proof_read(found: Found, plan: ProofPlan | None, rows: Iterable[Sequence[Any]]) -> ProofRead:
    """`found` with the path that `plan` assembles from the node rows (level, index, hash) of
    `nodes_query(plan.nodes)`."""
    if plan is None:
        return (*found, None)
    return (*found, assemble(plan, {(r[0], r[1]): bytes(r[2]) for r in rows}))


_GAP = 64
"""Wanted nodes of a level closer than this are read by one range query (the few between them
read for nothing); farther apart, by separate ones (the right-edge nodes of a proof lie far
from the batch's leaves)."""


def _ranges(wanted: dict[int, set[int]]) -> list[tuple[int, set[int], int, int]]:
    """(level, its wanted indexes, low, high) of each range query."""
    ranges = []
    for level, indexes in sorted(wanted.items()):
        ordered = sorted(indexes)
        low = previous = ordered[0]
        for index in ordered[1:]:
            if index - previous > _GAP:
                ranges.append((level, indexes, low, previous))
                low = index
            previous = index
        ranges.append((level, indexes, low, previous))
    return ranges


async def read_inclusion_proofs(
    conn: AsyncConnection, positions: Sequence[int], tree_size: int
) -> list[InclusionProof]:
    """The inclusion proofs of the events at `positions` in the tree of `tree_size` leaves, in
    the order given (every position must be below `tree_size`, and the tree sequenced that far)."""
    if not positions:
        return []
    outside = [p for p in positions if not 0 <= p < tree_size]
    if outside:
        raise EventNotFoundError(
            f"position {outside[0]} is not in the tree of size {tree_size} (sequence first)"
        )
    plans = inclusion_plans(sorted(set(positions)), tree_size)
    elements = {element for plan in plans.values() for element in plan}
    wanted: dict[int, set[int]] = {0: set(positions)}
    for element in elements:
        for level, index in element:
            wanted.setdefault(level, set()).add(index)
    hashes: dict[NodeId, bytes] = {}
    for level, indexes, low, high in _ranges(wanted):
        if level == 0:
            query = select(events.c.position, events.c.leaf_hash).where(
                events.c.position.between(low, high)
            )
        else:
            query = select(merkle_nodes.c.idx, merkle_nodes.c.hash).where(
                merkle_nodes.c.level == level, merkle_nodes.c.idx.between(low, high)
            )
        for index, digest in await conn.execute(query):
            if index in indexes:
                hashes[level, index] = bytes(digest)
    # Each distinct element folded once (a right-edge element is shared by every proof below).
    element_list = list(elements)
    folded = dict(zip(element_list, assemble(ProofPlan(tuple(element_list)), hashes), strict=True))
    proofs = []
    for position in positions:
        leaf = hashes.get((0, position))
        if leaf is None:
            raise MerkleError(f"the leaf hash of position {position} is missing")
        path = tuple(folded[element] for element in plans[position])
        proofs.append(InclusionProof(position, tree_size, leaf, path))
    return proofs


@dataclass(frozen=True, slots=True)
class InclusionProofBundle:
    """An inclusion proof with the signed checkpoint it leads to: all an auditor needs offline."""

    proof: InclusionProof
    checkpoint: SignedCheckpoint
    event_id: uuid.UUID

    def to_json(self) -> dict[str, Any]:
        """JSON-able: the event id, the proof document, the checkpoint note and verifier key."""
        return {
            "event_id": str(self.event_id),
            "proof": json.loads(self.proof.to_json()),
            "checkpoint": self.checkpoint.note,
            "verifier_key": self.checkpoint.verifier_key,
        }


class ProofReads:
    """The signed checkpoints and the proofs of the ledger in `_store` (the proof side of
    `Ledger`)."""

    _store: Store

    async def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The latest signed checkpoint (None before the first `sequence`)."""
        async with self._store.read() as conn:
            return await latest_checkpoint(conn)

    async def inclusion_proof(self, ref: uuid.UUID | str | int) -> InclusionProofBundle:
        """The RFC 6962 inclusion proof of one event against the latest checkpoint."""
        column, value = ref_column(ref)
        found = await self._store.read_inclusion(column, value)
        if found is None:
            raise EventNotFoundError(f"no event {ref}")
        position, event_id, leaf, head, path = found
        if head is None or path is None:
            raise NotSequencedError(
                f"event at position {position} is not covered by a signed checkpoint yet "
                "(run `unhardcoded ledger checkpoint`)"
            )
        return InclusionProofBundle(
            InclusionProof(position, head.tree_size, leaf, tuple(path)),
            head,
            uuid.UUID(bytes=event_id),
        )

    async def inclusion_proofs(
        self, positions: Sequence[int], tree_size: int
    ) -> list[InclusionProof]:
        """The inclusion proofs of many events (by position) in the tree of `tree_size` leaves
        (a signed checkpoint's size), read together: their paths share most nodes."""
        async with self._store.read() as conn:
            return await read_inclusion_proofs(conn, positions, tree_size)

    async def consistency_proof(
        self, old_size: int, new_size: int | None = None
    ) -> tuple[ConsistencyProof, SignedCheckpoint, SignedCheckpoint]:
        """The consistency proof between two signed checkpoints (default: the latest)."""
        async with self._store.read() as conn:
            head = await latest_checkpoint(conn)
            new_size = head.tree_size if new_size is None and head else new_size
            found = await checkpoints_at(conn, (old_size, new_size))
            for size in (old_size, new_size):
                if size not in found:
                    raise NotSequencedError(f"no signed checkpoint at tree size {size}")
            assert new_size is not None
            if old_size > new_size:
                raise InvalidEventError(f"old size {old_size} is larger than new size {new_size}")
            path = await plan_hashes(conn, consistency_proof_plan(old_size, new_size))
        return ConsistencyProof(old_size, new_size, tuple(path)), found[old_size], found[new_size]
