"""Re-verification of a whole ledger from its rows (floor 1: pure; the store streams the rows in).

Per event: position gapless from 0, stream version gapless per stream, payload digest, prev hash
= previous chain hash, chain hash and leaf hash recomputed from the leaf data. Over the log: the
RFC 6962 tree rebuilt from the leaves must give every signed checkpoint's root, every checkpoint
signature must open with its key (named after the ledger's origin), and every stored Merkle node
(what proofs are served from) must equal the recomputed one.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ledger._checkpoint import open_checkpoint
from ledger._envelope import GENESIS_HASH, LEAF_MAGIC
from ledger._errors import LedgerError
from ledger._tree import Frontier, NodeId, append_leaves

__all__ = ["CheckpointRow", "EventRow", "Problem", "Verifier", "VerifyReport"]

EventRow = tuple[int, bytes, str, str, int, int, bytes, bytes, bytes, bytes, bytes, bytes]
"""(position, event_id, type, stream_id, stream_version, recorded_at_us, payload,
payload_digest, attachments, prev_hash, chain_hash, leaf_hash), as stored."""

CheckpointRow = tuple[int, bytes, str, str]
"""(tree_size, root_hash, verifier_key, note), as stored."""

_HEAD = struct.Struct(">4sQ16sqQ32s32sH").pack
_U16 = struct.Struct(">H").pack
_U32 = struct.Struct(">I").pack


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing found wrong: the position it concerns (None: not one event) and what."""

    position: int | None
    message: str

    def __str__(self) -> str:
        where = "ledger" if self.position is None else f"position {self.position}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What `verify` checked and the first problem, if any."""

    events: int
    checkpoints: int
    tree_size: int
    root_hash: bytes | None
    problem: Problem | None
    segments: int = field(default=1, compare=False)
    """How many processes checked the events (1: sequentially, or a problem was named by the
    sequential re-run)."""

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return self.problem is None


class Verifier:
    """Feed it the rows in position order, chunk by chunk; it keeps O(streams + log n) state."""

    def __init__(
        self,
        checkpoints: Sequence[CheckpointRow],
        origin: str,
        trusted_keys: Iterable[str] | None = None,
    ) -> None:
        self.problem: Problem | None = None
        self._next = 0
        self._prev = GENESIS_HASH
        self._versions: dict[str, int] = {}
        self._tails: dict[tuple[str, str], tuple[int, bytes]] = {}
        self._frontier = Frontier.empty()
        self._pending: list[tuple[int, bytes]] = []  # (tree size, root) still to reach
        self.sequenced_size = checkpoints[-1][0] if checkpoints else 0
        self._checkpoints = len(checkpoints)
        trusted = None if trusted_keys is None else set(trusted_keys)
        for size, root, key, note in checkpoints:
            where = f"checkpoint at tree size {size}"
            if trusted is not None and key not in trusted:
                self._fail(None, f"{where} is signed by an untrusted key {key}")
                break
            try:
                opened = open_checkpoint(note, key, origin=origin)
            except LedgerError as exc:
                self._fail(None, f"{where}: the signed note does not open: {exc}")
                break
            if (opened.size, opened.root) != (size, root):
                self._fail(
                    None,
                    f"{where}: the signed note says size {opened.size}, root "
                    f"{opened.root.hex()}, the row says root {root.hex()}",
                )
                break
            self._pending.append((size, root))

    @property
    def signed(self) -> list[tuple[int, bytes]]:
        """The (tree size, root) of each signed checkpoint whose note opened and that the rows fed
        so far have not reached yet (all of them before the first `feed`)."""
        return list(self._pending)

    def _fail(self, position: int | None, message: str) -> None:
        if self.problem is None:
            self.problem = Problem(position, message)

    def feed(self, rows: Sequence[EventRow]) -> dict[NodeId, bytes]:
        """Check a chunk of rows (the next positions). Returns the Merkle nodes (level >= 1) it
        completed within the signed tree, for `check_nodes` against the stored ones."""
        if self.problem is not None:
            return {}
        sha = hashlib.sha256
        head, u16, u32, magic = _HEAD, _U16, _U32, LEAF_MAGIC
        expected, prev, versions = self._next, self._prev, self._versions
        leaves: list[bytes] = []
        add_leaf = leaves.append
        # (type, stream) -> (len(type), type ‖ u16 len(stream) ‖ stream): few distinct pairs.
        tails = self._tails
        no_attachments = u32(0)
        for row in rows:
            pos, eid, typ, sid, ver, rec, payload, pdig, att, prv, chained, leaf = row
            if pos != expected:
                what = "missing" if pos > expected else "out of order or duplicated"
                self._fail(expected, f"event {what} (next row has position {pos})")
                break
            if sha(payload).digest() != pdig:
                self._fail(pos, "payload digest does not match the payload")
                break
            if prv != prev:
                self._fail(pos, "prev hash is not the previous event's chain hash")
                break
            if len(eid) != 16:
                self._fail(pos, "event id is not 16 bytes")
                break
            cached = tails.get((typ, sid))
            if cached is None:
                if len(tails) > 100_000:
                    tails.clear()
                tb, sb = typ.encode(), sid.encode()
                cached = tails[typ, sid] = (len(tb), tb + u16(len(sb)) + sb)
            data = head(magic, pos, eid, rec, ver, pdig, prv, cached[0]) + cached[1]
            data += u32(len(att)) + att if att else no_attachments
            if sha(prv + data).digest() != chained:
                self._fail(pos, "chain hash does not match the envelope")
                break
            if sha(b"\x00" + data).digest() != leaf:
                self._fail(pos, "leaf hash does not match the envelope")
                break
            last = versions.get(sid, 0)
            if ver != last + 1:
                self._fail(pos, f"stream {sid!r} version {ver} follows version {last}")
                break
            versions[sid] = ver
            add_leaf(leaf)
            prev = chained
            expected += 1
        self._next, self._prev = expected, prev
        return self._grow(leaves)

    def _reach_checkpoints(self) -> None:
        while self._pending and self._pending[0][0] <= self._frontier.size:
            tree_size, root = self._pending.pop(0)
            if self._frontier.root() != root:
                self._fail(
                    None,
                    f"the tree of the first {tree_size} events does not have the signed root "
                    "(events were rewritten consistently with the chain)",
                )

    def _grow(self, leaves: list[bytes]) -> dict[NodeId, bytes]:
        nodes: dict[NodeId, bytes] = {}
        offset = 0
        self._reach_checkpoints()
        while offset < len(leaves):
            size = self._frontier.size
            target = self._pending[0][0] if self._pending else size + len(leaves) - offset
            take = min(target - size, len(leaves) - offset)
            self._frontier, made = append_leaves(self._frontier, leaves[offset : offset + take])
            offset += take
            if size < self.sequenced_size:
                nodes.update(made)
            self._reach_checkpoints()
        limit = self.sequenced_size
        if self._frontier.size <= limit:
            return nodes
        return {(lv, i): h for (lv, i), h in nodes.items() if (i + 1) << lv <= limit}

    def check_nodes(self, computed: Mapping[NodeId, bytes], stored: Mapping[NodeId, bytes]) -> None:
        """Compare recomputed Merkle nodes with the stored ones; the first difference fails."""
        for (level, index), node in sorted(computed.items(), key=lambda kv: kv[0][1] << kv[0][0]):
            if stored.get((level, index)) != node:
                first = index << level
                known = self.problem
                if known is not None and known.position is not None and known.position <= first:
                    return
                last = ((index + 1) << level) - 1
                self.problem = Problem(
                    first,
                    f"Merkle node (level {level}, index {index}) over positions {first}..{last} "
                    "differs from the tree rebuilt from the events (rewritten events or node)",
                )
                return

    def finish(self) -> VerifyReport:
        """The report, once every row was fed."""
        if self.problem is None:
            self._reach_checkpoints()
        if self.problem is None and self._pending:
            size = self._pending[0][0]
            self._fail(
                self._next,
                f"a checkpoint signs {size} events but the ledger ends at {self._next} events",
            )
        return VerifyReport(
            events=self._next,
            checkpoints=self._checkpoints,
            tree_size=self._frontier.size,
            root_hash=self._frontier.root() if self._frontier.size else None,
            problem=self.problem,
        )
