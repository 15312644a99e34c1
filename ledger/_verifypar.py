"""Verify of a SQLite ledger split into segments checked by worker processes (floor 2).

Each worker checks one range of positions exactly as the sequential `Verifier` does (digests,
chain, leaves, versions within the range), from a provisional start (the range's first prev hash
and each stream's first version in the range), and hands back its leaf hashes. The parent then
checks what links the segments (each segment's first prev hash is the previous one's last chain
hash; each stream's first version in a segment follows its last one before), rebuilds the tree
from all the leaves, compares the stored Merkle nodes and the signed roots.

When anything is wrong, the parent runs the sequential verify over the whole ledger: it is what
names the first bad position (and its message) exactly; the parallel pass only makes the intact
case fast.
"""

from __future__ import annotations

import dataclasses
import itertools
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ledger._envelope import GENESIS_HASH
from ledger._store import SQLITE_BUSY_TIMEOUT_MS, translate_errors
from ledger._verify import VerifyReport
from ledger._verifyrun import check_chunk_nodes, open_verifier, verify_sqlite
from ledger._verifyseg import Segment

__all__ = ["verify_sqlite_parallel"]

# A worker is a bare interpreter running this (not multiprocessing, whose children re-import
# the parent's __main__, i.e. the whole CLI). It registers the `ledger` package without running
# its __init__ (SQLAlchemy and the whole ledger: about a second of CPU), so it imports only
# `ledger._verifyseg` and what that needs, and writes the pickled `Segment` to stdout.
_WORKER = """
import pickle, sys, types
bare = types.ModuleType("ledger")
bare.__path__ = [sys.argv[1]]
sys.modules["ledger"] = bare
from ledger._verifyseg import check_segment
path, low, high, chunk, timeout = sys.argv[2:]
segment = check_segment(path, int(low), int(high), int(chunk), float(timeout))
sys.stdout.buffer.write(pickle.dumps(segment))
"""


def _bounds(path: str) -> tuple[int, int]:
    with translate_errors():
        conn = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            count, top = conn.execute(
                "SELECT count(*), coalesce(max(position) + 1, 0) FROM ledger_events"
            ).fetchone()
            return int(count), int(top)
        finally:
            conn.close()


def _linked(segments: Sequence[Segment]) -> bool:
    """The links between segments: chain hashes and stream versions across each boundary."""
    versions: dict[str, int] = {}
    prev: bytes | None = GENESIS_HASH
    for segment in segments:
        if not segment.intact or segment.first_prev != prev:
            return False
        if any(v != versions.get(s, 0) + 1 for s, v in segment.first_versions.items()):
            return False
        versions.update(segment.last_versions)
        prev = segment.last_chain
    return True


def _tree(
    path: str,
    origin: str,
    chunk: int,
    trusted: Iterable[str] | None,
    leaves: bytes,
    events: int,
) -> VerifyReport:
    """The tree, stored nodes and signed roots over the leaves the workers recomputed."""
    with translate_errors():
        conn = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("BEGIN")
            verifier = open_verifier(conn, origin, trusted)
            hashes = [leaves[i : i + 32] for i in range(0, len(leaves), 32)]
            position = 0
            while verifier.problem is None and position < events:
                part = hashes[position : position + chunk]
                computed = verifier._grow(part)
                verifier._next = position + len(part)
                check_chunk_nodes(conn, verifier, computed, position, position + len(part))
                position += len(part)
            conn.execute("COMMIT")
        finally:
            conn.close()
    return verifier.finish()


def verify_sqlite_parallel(
    path: str,
    origin: str,
    chunk: int,
    trusted: Iterable[str] | None,
    workers: int,
    min_events: int = 0,
) -> VerifyReport:
    """Verify with `workers` processes; the sequential verify whenever something is wrong, and
    for ledgers under `min_events` events (starting the processes costs about a second)."""
    count, top = _bounds(path)
    if count != top or count < max(workers, min_events):
        return verify_sqlite(path, origin, chunk, trusted)
    cuts = [count * k // workers for k in range(workers + 1)]
    package = str(Path(__file__).resolve().parent)
    timeout = str(SQLITE_BUSY_TIMEOUT_MS / 1000)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                package,
                path,
                str(low),
                str(high),
                str(chunk),
                timeout,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for low, high in itertools.pairwise(cuts)
    ]
    segments: list[Segment] = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode == 0:
            segments.append(pickle.loads(out))
    if len(segments) != len(procs):
        # A worker that could not read (a locked or damaged file): the sequential verify
        # reports what is wrong with the precise error.
        return verify_sqlite(path, origin, chunk, trusted)
    # The report covers the `count` events there were at the start (appends may go on).
    if _linked(segments):
        leaves = b"".join(s.leaves for s in segments)
        report = _tree(path, origin, chunk, trusted, leaves, count)
        if report.ok:
            return dataclasses.replace(report, segments=len(segments))
    return verify_sqlite(path, origin, chunk, trusted)
