"""The worker side of the parallel verify (`ledger._verifypar`): one segment of the log.

Runs in a fresh process, so it imports only what checking needs (no SQLAlchemy): the parent
starts its workers with the `ledger` package registered without running its `__init__`.

A worker only has to say *whether* its segment is intact: when anything is off, the parent runs
the sequential `Verifier`, which names the first bad position and what is wrong with it. That lets
the worker check the same things (`ledger._verify` documents them) in a leaner loop: fewer
columns to fetch (the five fixed-size hashes come as one blob, their types and lengths checked by
SQLite), no messages, and each block's Merkle subtree built level by level. The tests run every
tampering of the mutation sweep through both and require the same report.

A segment is made of whole *blocks* of ``2**level`` positions (the last one may be partial). The
worker builds each block's subtree and compares it with the stored nodes of the block, so the
parent is left with one hash per block: it builds only the tree above the blocks.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from ledger._verifylean import Blocks, Chain, NodeCheck
from ledger._verifynodes import NODES_SQL

__all__ = ["Job", "Segment", "check_segment", "stored_nodes_match"]

# The five fixed-size hashes as one 144-byte blob (event id 16, payload digest 32, prev hash 32,
# chain hash 32, leaf hash 32), or NULL when any is not a blob of its size: SQLite checks that in
# C, and a NULL fails the segment. Type and stream id come as their UTF-8 bytes.
_ROWS = (
    "SELECT position, stream_version, recorded_at_us, "
    "CASE WHEN typeof(type) = 'text' THEN CAST(type AS BLOB) END, "
    "CASE WHEN typeof(stream_id) = 'text' THEN CAST(stream_id AS BLOB) END, "
    "payload, attachments, "
    "CASE WHEN typeof(event_id) = 'blob' AND length(event_id) = 16 "
    "AND typeof(payload_digest) = 'blob' AND length(payload_digest) = 32 "
    "AND typeof(prev_hash) = 'blob' AND length(prev_hash) = 32 "
    "AND typeof(chain_hash) = 'blob' AND length(chain_hash) = 32 "
    "AND typeof(leaf_hash) = 'blob' AND length(leaf_hash) = 32 "
    "THEN CAST(event_id || payload_digest || prev_hash || chain_hash || leaf_hash AS BLOB) END "
    "FROM ledger_events WHERE rowid >= ? ORDER BY rowid LIMIT ?"
)
# The rows are read in rowid order, which is position order as the writer inserts them: a table
# walk, without a lookup through the position index per row. Any other order shows up as a
# position out of sequence, and the sequential verify (in position order) takes over.
_FIRST = "SELECT rowid, prev_hash FROM ledger_events WHERE position = ?"


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
    """What one worker found over positions [low, high). Stream ids are their UTF-8 bytes."""

    intact: bool
    first_prev: bytes | None = None
    last_chain: bytes | None = None
    first_versions: dict[bytes, int] = field(default_factory=dict)
    last_versions: dict[bytes, int] = field(default_factory=dict)
    block_roots: bytes = b""
    """The subtree root of each full block, in order (32 bytes each)."""
    prefixes: dict[int, tuple[bytes, ...]] = field(default_factory=dict)
    """Tree size -> frontier hashes of the part of its last block below it (largest first)."""


def stored_nodes_match(conn: sqlite3.Connection, checks: list[NodeCheck]) -> bool:
    """Whether the stored nodes are the expected ones (SQLite)."""
    sql = NODES_SQL.format("?", "?", "?")
    for level, first, last, expected in checks:
        stored = conn.execute(sql, (level, first, last)).fetchall()
        if b"".join([bytes(r[0]) for r in stored]) != expected:
            return False
    return True


def check_segment(job: Job) -> Segment:
    """Check the segment of `job` (in one read transaction)."""
    conn = sqlite3.connect(job.path, isolation_level=None, timeout=job.timeout)
    try:
        conn.execute("PRAGMA mmap_size=1073741824")
        conn.execute("BEGIN")
        found = conn.execute(_FIRST, (job.low,)).fetchone()
        if found is None or not isinstance(found[1], bytes):
            return Segment(False)
        rowid, first_prev = found
        chain = Chain(job.low, first_prev)
        blocks = Blocks(job.low, job.level, job.sizes, job.sequenced_size)
        while chain.next < job.high:
            batch = conn.execute(_ROWS, (rowid, min(job.chunk, job.high - chain.next))).fetchall()
            leaves = chain.feed(batch) if batch else None
            if leaves is None or not stored_nodes_match(conn, blocks.add(leaves)):
                return Segment(False)
            rowid += len(batch)
        if not stored_nodes_match(conn, blocks.close()):
            return Segment(False)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return Segment(
        intact=True,
        first_prev=first_prev,
        last_chain=chain.prev,
        first_versions=chain.firsts,
        last_versions=chain.versions,
        block_roots=b"".join(blocks.roots),
        prefixes=blocks.prefixes,
    )
