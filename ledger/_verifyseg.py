"""The worker side of the parallel verify (`ledger._verifypar`): one segment of the log.

Runs in a fresh process, so it imports only what checking needs (no SQLAlchemy): the parent
starts its workers with the `ledger` package registered without running its `__init__`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ledger._tree import NodeId
from ledger._verify import Verifier

__all__ = ["Segment", "check_segment"]

_ROWS = (
    "SELECT position, event_id, type, stream_id, stream_version, recorded_at_us, payload, "
    "payload_digest, attachments, prev_hash, chain_hash, leaf_hash FROM ledger_events "
    "WHERE position >= ? AND position < ? ORDER BY position LIMIT ?"
)
# SQLite returns the bare columns of the row that holds the min(): each stream's first event.
_FIRSTS = (
    "SELECT stream_id, min(position), stream_version FROM ledger_events "
    "WHERE position >= ? AND position < ? GROUP BY stream_id"
)
_FIRST_PREV = "SELECT prev_hash FROM ledger_events WHERE position = ?"


@dataclass(frozen=True, slots=True)
class Segment:
    """What one worker found over positions [low, high)."""

    intact: bool
    events: int
    first_prev: bytes | None
    last_chain: bytes | None
    first_versions: dict[str, int]
    last_versions: dict[str, int]
    leaves: bytes


class _SegmentVerifier(Verifier):
    """The sequential checks over one segment; the tree is left to the parent."""

    def __init__(self, low: int, prev: bytes, versions: dict[str, int]) -> None:
        super().__init__([], "")
        self._next, self._prev, self._versions = low, prev, versions
        self.leaves: list[bytes] = []

    def _grow(self, leaves: list[bytes]) -> dict[NodeId, bytes]:
        self.leaves.extend(leaves)
        return {}


def check_segment(path: str, low: int, high: int, chunk: int, timeout: float) -> Segment:
    """Check positions [low, high) of the ledger at `path` (one read transaction)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    try:
        conn.execute("PRAGMA mmap_size=1073741824")
        conn.execute("BEGIN")
        firsts = {sid: ver for sid, _pos, ver in conn.execute(_FIRSTS, (low, high))}
        found = conn.execute(_FIRST_PREV, (low,)).fetchone()
        if found is None:
            return Segment(False, 0, None, None, {}, {}, b"")
        first_prev = bytes(found[0])
        verifier = _SegmentVerifier(low, first_prev, {s: v - 1 for s, v in firsts.items()})
        position = low
        while verifier.problem is None and position < high:
            batch = conn.execute(_ROWS, (position, high, chunk)).fetchall()
            if not batch:
                break
            verifier.feed(batch)
            position = batch[-1][0] + 1
        conn.execute("COMMIT")
    finally:
        conn.close()
    events = verifier._next - low
    return Segment(
        intact=verifier.problem is None and events == high - low,
        events=events,
        first_prev=first_prev,
        last_chain=verifier._prev,
        first_versions=firsts,
        last_versions=verifier._versions,
        leaves=b"".join(verifier.leaves),
    )
