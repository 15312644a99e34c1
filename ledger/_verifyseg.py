"""The worker side of the parallel verify (`ledger._verifypar`): one segment of the log.

Runs in a fresh process, so it imports only what checking needs (no SQLAlchemy): the parent
starts its workers with the `ledger` package registered without running its `__init__`.

A segment is made of whole *blocks* of ``2**level`` positions (the last one may be partial). The
worker runs the `Verifier` over its rows from a provisional start (the segment's first prev hash,
each stream's first version in the segment), builds each block's Merkle subtree
(`ledger._verifyblocks`) and compares the stored nodes of the block with it. It only has to say
whether its segment is intact: on any "no" the parent re-runs the sequential verify, which names
the first problem.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from ledger._tree import NodeId
from ledger._verify import Verifier
from ledger._verifyblocks import Blocks
from ledger._verifynodes import stored_nodes_match

__all__ = ["Job", "Segment", "check_segment"]

_ROWS = (
    "SELECT position, event_id, type, stream_id, stream_version, recorded_at_us, payload, "
    "payload_digest, attachments, prev_hash, chain_hash, leaf_hash FROM ledger_events "
    "WHERE position >= ? AND position < ? ORDER BY position LIMIT ?"
)
_FIRST_PREV = "SELECT prev_hash FROM ledger_events WHERE position = ?"


@dataclass(frozen=True, slots=True)
class Job:
    """What one worker checks: positions [low, high) of the ledger at `path`.

    `low` is a multiple of ``2**level``. `sizes` are the tree sizes within (low, high] whose
    roots the parent needs (signed checkpoints, the ledger's size): for each one that is not a
    block boundary the worker hands back the frontier of its partial block. `sequenced_size` is
    how far the stored tree reaches (the last signed checkpoint).
    """

    path: str
    low: int
    high: int
    chunk: int
    timeout: float
    level: int
    sizes: tuple[int, ...]
    sequenced_size: int


@dataclass(frozen=True, slots=True)
class Segment:
    """What one worker found over positions [low, high)."""

    intact: bool
    first_prev: bytes | None = None
    last_chain: bytes | None = None
    first_versions: dict[str, int] = field(default_factory=dict)
    last_versions: dict[str, int] = field(default_factory=dict)
    block_roots: bytes = b""
    """The subtree root of each full block, in order (32 bytes each)."""
    prefixes: dict[int, tuple[bytes, ...]] = field(default_factory=dict)
    """Tree size -> frontier hashes of the part of its last block below it (largest first)."""


class _SegmentVerifier(Verifier):
    """The `Verifier`'s checks over one segment, with the tree built block by block."""

    def __init__(self, conn: sqlite3.Connection, job: Job, prev: bytes) -> None:
        super().__init__([], "")
        self.start_at(job.low, prev)
        self.blocks = Blocks(job.low, job.level, job.sizes, job.sequenced_size)
        self._conn = conn

    def _grow(self, leaves: list[bytes]) -> dict[NodeId, bytes]:
        if not stored_nodes_match(self._conn, self.blocks.add(leaves)):
            self._fail(None, "a stored Merkle node differs from the rebuilt block")
        return {}


def check_segment(job: Job) -> Segment:
    """Check the segment of `job` (in one read transaction)."""
    conn = sqlite3.connect(job.path, isolation_level=None, timeout=job.timeout)
    try:
        conn.execute("PRAGMA mmap_size=1073741824")
        conn.execute("BEGIN")
        found = conn.execute(_FIRST_PREV, (job.low,)).fetchone()
        if found is None or not isinstance(found[0], bytes):
            return Segment(False)
        verifier = _SegmentVerifier(conn, job, found[0])
        position = job.low
        while verifier.problem is None and position < job.high:
            batch = conn.execute(_ROWS, (position, job.high, job.chunk)).fetchall()
            if not batch:
                break
            verifier.feed(batch)
            position = batch[-1][0] + 1
        closed = verifier.problem is None and stored_nodes_match(conn, verifier.blocks.close())
        conn.execute("COMMIT")
    finally:
        conn.close()
    if not closed or verifier.next_position != job.high:
        return Segment(False)
    return Segment(
        intact=True,
        first_prev=found[0],
        last_chain=verifier.last_chain_hash,
        first_versions=verifier.first_versions or {},
        last_versions=verifier.stream_versions,
        block_roots=b"".join(verifier.blocks.roots),
        prefixes=verifier.blocks.prefixes,
    )
