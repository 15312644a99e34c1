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

import hashlib
import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger._envelope import LEAF_MAGIC
from ledger._verifynodes import NODES_SQL

__all__ = ["Job", "Segment", "check_segment"]

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
_HEAD = struct.Struct(">4sQ16sqQ32s32sH").pack
_U16 = struct.Struct(">H").pack
_U32 = struct.Struct(">I").pack


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


class _Chain:
    """The per-event checks of `Verifier.feed`, as a yes/no over rows of `_ROWS`."""

    def __init__(self, low: int, prev: bytes) -> None:
        self.next = low
        self.prev = prev
        self.firsts: dict[bytes, int] = {}
        self.versions: dict[bytes, int] = {}
        self._tails: dict[tuple[bytes, bytes], tuple[int, bytes]] = {}

    def feed(self, rows: Sequence[Any]) -> list[bytes] | None:
        """The leaf hashes of the rows (the next positions), or None if anything is wrong."""
        try:
            return self._feed(rows)
        except (TypeError, ValueError, OverflowError, struct.error):
            return None  # a column of the wrong type: the sequential verify names it

    def _feed(self, rows: Sequence[Any]) -> list[bytes] | None:
        sha, head, u16, u32, magic = hashlib.sha256, _HEAD, _U16, _U32, LEAF_MAGIC
        expected, prev, versions, firsts, tails = (
            self.next,
            self.prev,
            self.versions,
            self.firsts,
            self._tails,
        )
        leaves: list[bytes] = []
        add_leaf = leaves.append
        no_attachments = u32(0)
        for pos, ver, rec, typ, sid, payload, att, fixed in rows:
            if pos != expected or len(fixed) != 144 or fixed[48:80] != prev:
                return None
            pdig = fixed[16:48]
            if sha(payload).digest() != pdig:
                return None
            cached = tails.get((typ, sid))
            if cached is None:
                if len(tails) > 100_000:
                    tails.clear()
                cached = tails[typ, sid] = (len(typ), typ + u16(len(sid)) + sid)
            data = head(magic, pos, fixed[:16], rec, ver, pdig, prev, cached[0]) + cached[1]
            data += u32(len(att)) + att if att else no_attachments
            chained, leaf = fixed[80:112], fixed[112:]
            if sha(prev + data).digest() != chained or sha(b"\x00" + data).digest() != leaf:
                return None
            last = versions.get(sid)
            if last is None:
                firsts[sid] = ver
            elif ver != last + 1:
                return None
            versions[sid] = ver
            add_leaf(leaf)
            prev = chained
            expected += 1
        self.next, self.prev = expected, prev
        return leaves


class _Blocks:
    """Each block's Merkle subtree, level by level, checked against the stored nodes."""

    def __init__(self, conn: sqlite3.Connection, job: Job) -> None:
        self._conn = conn
        self._level = job.level
        self._sizes = job.sizes
        self._sequenced = job.sequenced_size
        self._block: list[bytes] = []
        self._start = job.low
        self.roots: list[bytes] = []
        self.prefixes: dict[int, tuple[bytes, ...]] = {}

    def add(self, leaves: list[bytes]) -> bool:
        """Take the next leaves; False when a completed block differs from the stored nodes."""
        block, size, offset = self._block, 1 << self._level, 0
        while offset < len(leaves):
            take = min(size - len(block), len(leaves) - offset)
            block.extend(leaves[offset : offset + take])
            offset += take
            if len(block) == size and not self.close():
                return False
        return True

    def close(self) -> bool:
        """Finish the block collected so far (the last one may be partial)."""
        block, start = self._block, self._start
        if not block:
            return True
        node = hashlib.sha256
        levels = [block]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append(
                [
                    node(b"\x01" + a + b).digest()
                    for a, b in zip(below[::2], below[1::2], strict=False)
                ]
            )
        if len(block) == 1 << self._level:
            self.roots.append(levels[-1][0])
        for size in self._sizes:
            within = size - start
            if 0 < within <= len(block) and within & ((1 << self._level) - 1):
                self.prefixes[size] = tuple(
                    levels[lv][(within >> lv) - 1]
                    for lv in range(within.bit_length() - 1, -1, -1)
                    if within >> lv & 1
                )
        ok = self._stored_nodes_match(levels, start)
        self._start += len(block)
        block.clear()
        return ok

    def _stored_nodes_match(self, levels: list[list[bytes]], start: int) -> bool:
        sql = NODES_SQL.format("?", "?", "?")
        for lv in range(1, len(levels)):
            first = start >> lv
            count = min(len(levels[lv]), (self._sequenced >> lv) - first)
            if count <= 0:
                break
            stored = self._conn.execute(sql, (lv, first, first + count - 1)).fetchall()
            if b"".join([bytes(r[0]) for r in stored]) != b"".join(levels[lv][:count]):
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
        chain, blocks = _Chain(job.low, first_prev), _Blocks(conn, job)
        while chain.next < job.high:
            batch = conn.execute(_ROWS, (rowid, min(job.chunk, job.high - chain.next))).fetchall()
            leaves = chain.feed(batch) if batch else None
            if leaves is None or not blocks.add(leaves):
                return Segment(False)
            rowid += len(batch)
        if not blocks.close():
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
