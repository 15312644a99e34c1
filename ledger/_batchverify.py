"""Checking many inclusion proofs against one root, each hash computed once.

An audit bundle carries one inclusion proof per event, all against the same signed root. Checked
one by one (`ledger.merkle.verify_inclusion`), each costs a hash per tree level, although the
paths of neighbouring leaves meet a few levels up and are the same from there to the root. Here
the walk of RFC 9162 §2.1.3.2 remembers, for every node it passed on a proof that held, the hash
it computed there and the rest of that proof's path. A later proof that reaches the same node
with the same hash and the same remaining path would repeat exactly the computation that already
ended at the root, so it holds without hashing further. The answer is always the one
`verify_inclusion` gives (tests compare both on valid and tampered proofs); leaves checked in
index order meet the nodes of the previous path, which is where the saving is."""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

__all__ = ["InclusionChecker"]

_HASH_SIZE = 32
_REMEMBERED = 4096
"""Nodes remembered at most (then forgotten all at once): bounded memory on any input. Leaves in
index order only ever meet the previous path's nodes (a few dozen)."""


class InclusionChecker:
    """`check(leaf_hash, index, path)` is `verify_inclusion(leaf_hash, index, tree_size, path,
    root)`, remembering the nodes of the proofs that held."""

    def __init__(self, tree_size: int, root: bytes) -> None:
        self.tree_size = tree_size
        self.root = root
        # (node index at its level, right shifts so far) -> (hash, the proof's path, the offset
        # in it of the next hash): the walk's state after a step, on a proof that held.
        self._seen: dict[tuple[int, int], tuple[bytes, tuple[bytes, ...], int]] = {}

    def check(self, leaf_hash: bytes, index: int, path: Sequence[bytes]) -> bool:
        """Whether `path` shows `leaf_hash` at `index` under the root. Never raises."""
        size, root = self.tree_size, self.root
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            return False
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != _HASH_SIZE:
            return False
        if not isinstance(root, bytes) or len(root) != _HASH_SIZE:
            return False
        try:
            steps = tuple(path)
        except TypeError:
            return False
        # Exact 32-byte `bytes` are recognized without a Python-level loop; anything else gets
        # the element-wise test `verify_inclusion` makes.
        exact = set(map(type, steps)) <= {bytes} and set(map(len, steps)) <= {_HASH_SIZE}
        if not exact and not all(isinstance(p, bytes) and len(p) == _HASH_SIZE for p in steps):
            return False
        seen = self._seen
        fn, sn, shifts, r = index, size - 1, 0, leaf_hash
        walked: list[tuple[tuple[int, int], bytes, int]] = []
        for offset, p in enumerate(steps):
            known = seen.get((fn, shifts))
            if known is not None and known[0] == r and known[1][known[2] :] == steps[offset:]:
                self._remember(walked, steps)
                return True
            walked.append(((fn, shifts), r, offset))
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                r = sha256(b"\x01" + p + r).digest()
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
                    shifts += 1
            else:
                r = sha256(b"\x01" + r + p).digest()
            fn >>= 1
            sn >>= 1
            shifts += 1
        if sn != 0 or r != root:
            return False
        walked.append(((fn, shifts), r, len(steps)))
        self._remember(walked, steps)
        return True

    def _remember(
        self, walked: list[tuple[tuple[int, int], bytes, int]], steps: tuple[bytes, ...]
    ) -> None:
        if len(self._seen) + len(walked) > _REMEMBERED:
            self._seen.clear()
        for node, r, offset in walked:
            self._seen[node] = (r, steps, offset)
