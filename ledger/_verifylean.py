"""The lean verify pass: whether a ledger is intact, as fast as Python allows (floor 1: pure).

`Verifier` (`ledger._verify`) checks everything and names the first problem; it is what every
failure ends in. The lean pass checks the same things (per event: position, payload digest, prev
hash, chain hash, leaf hash, stream version; over the log: stored Merkle nodes and signed roots)
but only answers yes or no, which lets it skip the bookkeeping a precise message needs:

- the store hands it fewer objects per event (`Chain` takes the five fixed-size hashes as one
  blob whose types and sizes the database checked);
- the tree is built per block of ``2**level`` positions, level by level (`Blocks`), so blocks can
  be checked in separate processes, and only one hash per block is left for the tree above the
  blocks (`tree_above_blocks`), which also rebuilds every signed root.

The stores run it (`ledger._verifyseg` and `ledger._verifypar` for SQLite, `ledger._verifyrun`
for PostgreSQL) and fall back to the `Verifier` on any "no".
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ledger._envelope import LEAF_MAGIC
from ledger._tree import Frontier, NodeId, append_leaves

__all__ = ["MAX_BLOCK_LEVEL", "Blocks", "Chain", "NodeCheck", "block_level", "tree_above_blocks"]

MAX_BLOCK_LEVEL = 16
"""Blocks are at most 2**16 positions (the tree above them is 1/65,536 of the whole)."""

_HEAD = struct.Struct(">4sQ16sqQ32s32sH").pack
_U16 = struct.Struct(">H").pack
_U32 = struct.Struct(">I").pack


class Chain:
    """The per-event checks of `Verifier.feed`, as a yes/no.

    Rows: (position, stream version, recorded_at_us, type as UTF-8 bytes, stream id as UTF-8
    bytes, payload, encoded attachment digests, the 144-byte concatenation of event id,
    payload digest, prev hash, chain hash and leaf hash, or None when one of them is not a
    byte string of its size)."""

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


NodeCheck = tuple[int, int, int, bytes]
"""(level, first index, last index, the expected hashes of those stored nodes, concatenated)."""


class Blocks:
    """Each block's Merkle subtree, level by level, and the stored nodes to compare with it.

    Blocks are ``2**level`` positions from `low` (a multiple of that); `sizes` are the tree
    sizes whose roots will be needed: for each one inside a block (not on its boundary) the
    frontier of the block's part below it is kept in `prefixes`. Stored nodes exist up to
    `sequenced_size` (the last signed checkpoint)."""

    def __init__(self, low: int, level: int, sizes: Iterable[int], sequenced_size: int) -> None:
        self._level = level
        self._sizes = tuple(sizes)
        self._sequenced = sequenced_size
        self._block: list[bytes] = []
        self._start = low
        self.roots: list[bytes] = []
        self.prefixes: dict[int, tuple[bytes, ...]] = {}

    def add(self, leaves: list[bytes]) -> list[NodeCheck]:
        """Take the next leaves; the node checks of the blocks they completed."""
        block, size, offset = self._block, 1 << self._level, 0
        checks: list[NodeCheck] = []
        while offset < len(leaves):
            take = min(size - len(block), len(leaves) - offset)
            block.extend(leaves[offset : offset + take])
            offset += take
            if len(block) == size:
                checks += self.close()
        return checks

    def close(self) -> list[NodeCheck]:
        """Finish the block collected so far (the last one may be partial)."""
        block, start = self._block, self._start
        if not block:
            return []
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
        checks: list[NodeCheck] = []
        for lv in range(1, len(levels)):
            first = start >> lv
            count = min(len(levels[lv]), (self._sequenced >> lv) - first)
            if count <= 0:
                break
            checks.append((lv, first, first + count - 1, b"".join(levels[lv][:count])))
        self._start += len(block)
        block.clear()
        return checks


def block_level(count: int, workers: int) -> int:
    """The level of the blocks: at least two blocks per worker, at most `MAX_BLOCK_LEVEL`."""
    return max(0, min(MAX_BLOCK_LEVEL, (count // (2 * workers)).bit_length() - 1))


def tree_above_blocks(
    signed: Sequence[tuple[int, bytes]],
    level: int,
    roots: Sequence[bytes],
    prefixes: Mapping[int, tuple[bytes, ...]],
    count: int,
    sequenced_size: int,
) -> tuple[bytes | None, list[NodeCheck]]:
    """The root of a ledger of `count` events from its block roots (and the `prefixes` of its
    partial blocks), with the checks of the stored nodes above the blocks; None for the root
    when a signed (size, root) is not what the blocks give."""
    cuts = sorted({size >> level for size, _ in signed} | {count >> level})
    frontier, nodes, done = Frontier.empty(), dict[NodeId, bytes](), 0
    above: dict[int, tuple[bytes, ...]] = {0: ()}
    for cut in cuts:
        frontier, made = append_leaves(frontier, roots[done:cut])
        nodes.update(((lv + level, i), h) for (lv, i), h in made.items())
        above[cut], done = frontier.hashes, cut

    def root(size: int) -> bytes:
        low = () if size & ((1 << level) - 1) == 0 else prefixes[size]
        return Frontier(size, above[size >> level] + low).root()

    checks: list[NodeCheck] = []
    top = level + 1
    while sequenced_size >> top:
        last = (sequenced_size >> top) - 1
        checks.append((top, 0, last, b"".join(nodes[top, i] for i in range(last + 1))))
        top += 1
    if any(root(size) != signed_root for size, signed_root in signed):
        return None, checks
    return root(count), checks
