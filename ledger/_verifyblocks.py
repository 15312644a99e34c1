"""The Merkle tree of a verify split into blocks (floor 1: pure).

A parallel verify (`ledger._verifypar`) cuts the log into blocks of ``2**level`` positions. Each
worker builds the subtree of every block in its segment level by level (`Blocks`) and compares
the stored nodes of the block with it; the parent gets one hash per block and builds only the
tree above the blocks (`tree_above_blocks`), which also rebuilds every signed root from the tree
above the blocks plus the frontier of the partial block under it. The per-event checks are the
`Verifier`'s own (`ledger._verify`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from ledger._tree import Frontier, NodeId, append_leaves

__all__ = ["MAX_BLOCK_LEVEL", "Blocks", "NodeCheck", "block_level", "tree_above_blocks"]

MAX_BLOCK_LEVEL = 16
"""Blocks are at most 2**16 positions (the tree above them is 1/65,536 of the whole)."""


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
    """The level of the blocks: at least eight blocks per worker (segments are whole blocks, so
    they stay within 1/16 of an even share), at most `MAX_BLOCK_LEVEL`."""
    return max(0, min(MAX_BLOCK_LEVEL, (count // (8 * workers)).bit_length() - 1))


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
