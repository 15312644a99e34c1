"""Verify of a SQLite ledger split into segments checked by worker processes (floor 2).

The log is cut into blocks of ``2**level`` positions and the blocks into one segment per worker
(a bare interpreter). Each worker runs the `Verifier` over its segment from a provisional start
(the segment's first prev hash, each stream's first version in it), builds each block's Merkle
subtree and compares it with the stored nodes (`ledger._verifyseg`). The parent then checks what
links the segments (each segment's first prev hash is the previous one's last chain hash; each
stream's first version in a segment follows its last one before), builds the tree above the
blocks from their roots, compares those stored nodes, and rebuilds every signed root from the
tree above the blocks and the frontier of the partial block under it (`ledger._verifyblocks`).

The split only answers "intact or not". When anything is wrong, the sequential verify runs over
the whole ledger: it is what names the first bad position (and its message) exactly, so the
report is the same either way.
"""

from __future__ import annotations

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
from ledger._verifyblocks import block_level, tree_above_blocks
from ledger._verifynodes import stored_nodes_match
from ledger._verifyrun import open_verifier, verify_sqlite
from ledger._verifyseg import Job, Segment

__all__ = ["verify_sqlite_parallel"]

_BOUNDS = "SELECT count(*), coalesce(max(position) + 1, 0) FROM ledger_events"


# A worker is a bare interpreter running this (not multiprocessing, whose children re-import
# the parent's __main__, i.e. the whole CLI). It registers the `ledger` package without running
# its __init__ (SQLAlchemy and the whole ledger: about a second of CPU), so it imports only
# `ledger._verifyseg` and what that needs; it reads its pickled `Job` from stdin and writes the
# pickled `Segment` to stdout.
_WORKER = """
import pickle, sys, types
bare = types.ModuleType("ledger")
bare.__path__ = [sys.argv[1]]
sys.modules["ledger"] = bare
from ledger._verifyseg import check_segment
segment = check_segment(pickle.loads(sys.stdin.buffer.read()))
sys.stdout.buffer.write(pickle.dumps(segment))
"""


def _run_workers(jobs: Sequence[Job]) -> list[Segment] | None:
    package = str(Path(__file__).resolve().parent)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, package],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for _ in jobs
    ]
    # Every job goes out before any answer is read, so the workers run at the same time. No
    # pipe can deadlock: a worker reads its whole job before it writes, and a worker blocked on
    # a full stdout only waits for the parent to reach it in order.
    for proc, job in zip(procs, jobs, strict=True):
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(job))
        proc.stdin.close()
    outputs = []
    for proc in procs:
        assert proc.stdout is not None
        outputs.append(proc.stdout.read())
        proc.stdout.close()
        proc.wait()
    if any(proc.returncode != 0 for proc in procs):
        return None
    return [pickle.loads(out) for out in outputs]


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


def _split(
    path: str, origin: str, chunk: int, trusted: Iterable[str] | None, workers: int, floor: int
) -> VerifyReport | None:
    """The report of an intact ledger (as of this call), or None: look sequentially."""
    with translate_errors():
        conn = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("BEGIN")  # one snapshot for the bounds, checkpoints and stored nodes
            count, top = conn.execute(_BOUNDS).fetchone()
            checkpoints = conn.execute("SELECT count(*) FROM ledger_checkpoints").fetchone()[0]
            verifier = open_verifier(conn, origin, trusted)
            signed = verifier.signed
            if count != top or count == 0 or verifier.problem is not None:
                return None
            if any(size > count for size, _ in signed):
                return None
            if count < max(2 * workers, floor):
                return None  # starting the processes would cost more than they save
            level = block_level(count, workers)
            half = 1 << level >> 1  # cut at the block boundary nearest to an even share
            cuts = [(count * k // workers + half) >> level << level for k in range(workers)]
            cuts.append(count)
            sizes = sorted({size for size, _ in signed} | {count})
            timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
            jobs = [
                Job(
                    path,
                    low,
                    high,
                    chunk,
                    timeout,
                    level,
                    tuple(s for s in sizes if low < s <= high),
                    verifier.sequenced_size,
                )
                for low, high in itertools.pairwise(cuts)
            ]
            segments = _run_workers(jobs)
            if segments is None or not _linked(segments):
                return None
            blob = b"".join(s.block_roots for s in segments)
            root, checks = tree_above_blocks(
                verifier.signed,
                level,
                [blob[i : i + 32] for i in range(0, len(blob), 32)],
                {size: hashes for s in segments for size, hashes in s.prefixes.items()},
                count,
                verifier.sequenced_size,
            )
            if not stored_nodes_match(conn, checks):
                root = None
            conn.execute("COMMIT")
        finally:
            conn.close()
    if root is None:
        return None
    return VerifyReport(
        events=count,
        checkpoints=checkpoints,
        tree_size=count,
        root_hash=root,
        problem=None,
        segments=len(segments),
    )


def verify_sqlite_parallel(
    path: str,
    origin: str,
    chunk: int,
    trusted: Iterable[str] | None,
    workers: int,
    min_events: int = 0,
) -> VerifyReport:
    """Verify with `workers` processes (sequentially for ledgers under `min_events` events, or
    under two per worker); the sequential verify whenever something is wrong, to name it. The
    report covers the events there were when it started (appends may go on)."""
    report = _split(path, origin, chunk, trusted, workers, min_events)
    return report if report is not None else verify_sqlite(path, origin, chunk, trusted)
