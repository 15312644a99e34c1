"""The lean verify of a SQLite ledger, in one or several processes (floor 2).

The log is cut into blocks of ``2**level`` positions and the blocks into one segment per worker
(a bare interpreter; with one worker, this process). Each worker checks its segment like the
sequential `Verifier` (digests, chain, leaves, versions within the range) from a provisional
start (the range's first prev hash and each stream's first version in the range), builds each
block's Merkle subtree and compares it with the stored nodes (`ledger._verifyseg`). The parent
then checks what links the segments (each segment's first prev hash is the previous one's last
chain hash; each stream's first version in a segment follows its last one before), builds the
tree above the blocks from their roots, compares those stored nodes, and rebuilds every signed
root from the tree above the blocks and the frontier of the partial block under it.

The lean pass only answers "intact or not". When anything is wrong, the sequential `Verifier`
runs over the whole ledger: it is what names the first bad position (and its message) exactly,
so the report is the same whichever pass found the problem.
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
from ledger._tree import Frontier, NodeId, append_leaves
from ledger._verify import Verifier, VerifyReport
from ledger._verifynodes import NODES_SQL, same_nodes
from ledger._verifyrun import open_verifier, verify_sqlite
from ledger._verifyseg import Job, Segment, check_segment

__all__ = ["verify_sqlite_fast"]

MAX_BLOCK_LEVEL = 16
"""Blocks are at most 2**16 positions (the parent's share of the tree is 1/65,536 of it)."""

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


def block_level(count: int, workers: int) -> int:
    """The level of the blocks: at least two blocks per worker, at most `MAX_BLOCK_LEVEL`."""
    return max(0, min(MAX_BLOCK_LEVEL, (count // (2 * workers)).bit_length() - 1))


def _run_workers(jobs: Sequence[Job]) -> list[Segment] | None:
    if len(jobs) == 1:
        return [check_segment(jobs[0])]
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
    outputs = [
        proc.communicate(pickle.dumps(job))[0] for proc, job in zip(procs, jobs, strict=True)
    ]
    if any(proc.returncode != 0 for proc in procs):
        return None
    return [pickle.loads(out) for out in outputs]


def _stored_upper_nodes_match(
    conn: sqlite3.Connection, computed: dict[NodeId, bytes], level: int, sequenced: int
) -> bool:
    """The stored nodes above the blocks equal the ones rebuilt from the block roots."""
    sql = NODES_SQL.format("?", "?", "?")
    top = level + 1
    while sequenced >> top:
        high = (sequenced >> top) - 1
        rows = conn.execute(sql, (top, 0, high)).fetchall()
        if not same_nodes(computed, top, 0, high, rows):
            return False
        top += 1
    return True


def _tree_above_blocks(
    conn: sqlite3.Connection,
    verifier: Verifier,
    level: int,
    segments: Sequence[Segment],
    count: int,
) -> bytes | None:
    """The root of the whole ledger, or None when a signed root or a stored node above the
    blocks differs from the one rebuilt from the workers' block roots."""
    blob = b"".join(s.block_roots for s in segments)
    roots = [blob[i : i + 32] for i in range(0, len(blob), 32)]
    prefixes = {size: hashes for s in segments for size, hashes in s.prefixes.items()}
    signed = verifier.signed
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

    if any(root(size) != signed_root for size, signed_root in signed):
        return None
    if not _stored_upper_nodes_match(conn, nodes, level, verifier.sequenced_size):
        return None
    return root(count)


def _linked(segments: Sequence[Segment]) -> bool:
    """The links between segments: chain hashes and stream versions across each boundary."""
    versions: dict[bytes, int] = {}
    prev: bytes | None = GENESIS_HASH
    for segment in segments:
        if not segment.intact or segment.first_prev != prev:
            return False
        if any(v != versions.get(s, 0) + 1 for s, v in segment.first_versions.items()):
            return False
        versions.update(segment.last_versions)
        prev = segment.last_chain
    return True


def _parallel(
    path: str, origin: str, chunk: int, trusted: Iterable[str] | None, workers: int, count: int
) -> VerifyReport | None:
    """The report of an intact ledger of (at least) `count` events, or None: look sequentially."""
    with translate_errors():
        conn = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("BEGIN")
            checkpoints = conn.execute("SELECT count(*) FROM ledger_checkpoints").fetchone()[0]
            verifier = open_verifier(conn, origin, trusted)
            signed = verifier.signed
            if verifier.problem is not None or any(size > count for size, _ in signed):
                return None
            level = block_level(count, workers)
            cuts = [(count * k // workers) >> level << level for k in range(workers)] + [count]
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
            root = _tree_above_blocks(conn, verifier, level, segments, count)
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


def verify_sqlite_fast(
    path: str,
    origin: str,
    chunk: int,
    trusted: Iterable[str] | None,
    workers: int,
    min_events: int = 0,
) -> VerifyReport:
    """Verify with `workers` processes (1: in this one; also for ledgers under `min_events`
    events: starting the processes costs about a quarter of a second); the sequential
    `Verifier` whenever something is wrong, to name it."""
    count, top = _bounds(path)
    if count != top or count == 0:
        return verify_sqlite(path, origin, chunk, trusted)
    if count < max(2 * workers, min_events):
        workers = 1
    # The report covers the `count` events there were at the start (appends may go on).
    report = _parallel(path, origin, chunk, trusted, workers, count)
    return report if report is not None else verify_sqlite(path, origin, chunk, trusted)
