"""Re-verification of a ledger from its rows, one position range at a time (pure: no I/O).
docs/ledger.md, "Verify", says what is checked and how ranges work together.

`RangeCheck` checks the positions [low, high), fed in chunks (`ledger._verifyrun` reads them). A
range from position 0 knows everything before it, so it checks the whole log by itself and
names the first problem exactly. A later range takes its first prev hash and each stream's first
version and time as given and hands them back, with its last ones, for `join_ranges` to link to
the range before. Ranges are cut at multiples of ``2**level`` positions (blocks, `cut_ranges`):
each range compares the stored nodes up to that level, `join_ranges` those above the blocks.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger._checkpoint import open_checkpoint
from ledger._errors import LedgerError, StoreIntegrityError
from ledger._format import (
    GENESIS_HASH,
    LEAF_HEAD,
    LEAF_MAGIC,
    chain_hash,
    leaf_hash,
    leaf_tail,
)
from ledger._rotation import designated_key, parse_rotation
from ledger._tree import Frontier, NodeId, append_leaves

__all__ = [
    "NO_BLOCKS",
    "NodeSpan",
    "Problem",
    "RangeCheck",
    "RangeJob",
    "RangeResult",
    "Source",
    "VerifyReport",
    "cut_ranges",
    "join_ranges",
    "nodes_match",
    "open_checkpoints",
]

NO_BLOCKS = 64
"""The block level of a range over the whole log: no block boundary inside any ledger."""

_MAX_BLOCK_LEVEL = 16  # blocks of at most 65,536 positions: the tree above is 1/65,536 of it

NodeSpan = tuple[int, int, int, bytes]
"""(level, first index, last index, the expected hashes of those stored nodes, concatenated)."""


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
    """How many processes checked the events (1: one range, or a problem was named by the
    one-range re-run)."""

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return self.problem is None


def open_checkpoints(
    rows: Iterable[Sequence[Any]],
    origin: str,
    trusted_keys: Iterable[str] | None,
    rotations: Iterable[tuple[int, bytes]] = (),
) -> tuple[list[tuple[int, bytes]], Problem | None]:
    """The (tree size, root) of each checkpoint row (tree_size, root_hash, verifier_key, note) in
    size order whose note opens, up to the first that does not (and that problem). Each must be
    signed by the key the recorded rotations (position, payload) designate (`ledger._rotation`)."""
    trusted = None if trusted_keys is None else set(trusted_keys)
    signed: list[tuple[int, bytes]] = []
    try:
        recorded = [parse_rotation(position, bytes(payload)) for position, payload in rotations]
    except StoreIntegrityError as exc:
        return signed, Problem(None, str(exc))
    first: str | None = None
    for size, raw_root, key, note in rows:
        root, where = bytes(raw_root), f"checkpoint at tree size {size}"
        if trusted is not None and key not in trusted:
            return signed, Problem(None, f"{where} is signed by an untrusted key {key}")
        first = key if first is None else first
        expected = designated_key(recorded, first, size)
        if key != expected:
            return signed, Problem(
                None,
                f"{where} is signed by key {key}, but the ledger's key at that size is "
                f"{expected}: no recorded rotation hands signing to it (a mistaken home folder, "
                "or a rewritten log)",
            )
        try:
            opened = open_checkpoint(note, key, origin=origin)
        except LedgerError as exc:
            return signed, Problem(None, f"{where}: the signed note does not open: {exc}")
        if (opened.size, opened.root) != (size, root):
            return signed, Problem(
                None,
                f"{where}: the signed note says size {opened.size}, root {opened.root.hex()}, "
                f"the row says root {root.hex()}",
            )
        signed.append((size, root))
    return signed, None


@dataclass(frozen=True, slots=True)
class RangeJob:
    """Positions [low, high) to check (high None: to the end of the log).

    `low` is a multiple of ``2**level``. `signed` are the signed (tree size, root) pairs
    within (low, high] (all of them for a range over the whole log);
    `sizes` the tree sizes within (low, high] whose frontier `join_ranges` needs; stored nodes
    exist up to `sequenced_size` (the last signed tree size).
    """

    low: int
    high: int | None
    level: int
    signed: tuple[tuple[int, bytes], ...]
    sizes: tuple[int, ...]
    sequenced_size: int


def cut_ranges(
    count: int, ranges: int, signed: Sequence[tuple[int, bytes]], sequenced: int
) -> list[RangeJob]:
    """`ranges` jobs over the `count` events of a log whose stored tree reaches `sequenced`,
    cut at whole blocks (at least eight per range, at most 2**16 positions each) near an even
    share; each carries the `signed` (tree size, root) pairs within it."""
    level = max(0, min(_MAX_BLOCK_LEVEL, (count // (8 * ranges)).bit_length() - 1))
    half = 1 << level >> 1  # cut at the block boundary nearest to an even share
    cuts = [(count * k // ranges + half) >> level << level for k in range(ranges)] + [count]
    return [
        RangeJob(
            low,
            high,
            level,
            tuple((size, root) for size, root in signed if low < size <= high),  # its own only
            (count,) if high == count else (),
            sequenced,
        )
        for low, high in itertools.pairwise(cuts)
        if high > low
    ]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a verify range reads, on a connection of its own (in another process, maybe): a
    SQLite file (and the busy timeout of the ledger's connections), or PostgreSQL (DSN, search
    path, the parent's exported snapshot)."""

    sqlite_path: str | None = None
    busy_timeout_ms: int = 0
    dsn: str | None = None
    search_path: str | None = None
    snapshot: str | None = None


@dataclass(frozen=True, slots=True)
class RangeResult:
    """What one range found: its first problem, or what links it to its neighbours."""

    problem: Problem | None
    end: int
    """The position after the last event that passed its checks."""
    root: bytes | None
    """Position 0 only: the root of the tree of the events [0, end)."""
    first_prev: bytes
    last_chain: bytes
    first_versions: dict[str, int]
    last_versions: dict[str, int]
    block_roots: bytes
    """The root of each whole block, in order (32 bytes each)."""
    prefixes: dict[int, tuple[bytes, ...]]
    """Tree size -> the frontier hashes of the part of its last block below it."""
    first_times: dict[str, int] = field(default_factory=dict)
    """Per stream, the recorded time of its first event in the range (a later range only)."""
    last_times: dict[str, int] = field(default_factory=dict)
    """Per stream, the recorded time of its last event in the range."""


def _event(eid: bytes) -> str:
    return f"event {uuid.UUID(bytes=eid)}" if len(eid) == 16 else f"event id {eid.hex()}"


class RangeCheck:
    """Feed it the rows of its range in position order, chunk by chunk; it keeps O(streams +
    log n) state besides the roots of the blocks it completed."""

    def __init__(self, job: RangeJob, first_prev: bytes) -> None:
        self.problem: Problem | None = None
        self._job = job
        self._next = job.low
        self._first_prev = self._prev = first_prev
        self._versions: dict[str, int] = {}
        self._times: dict[str, int] = {}
        self._first_times: dict[str, int] = {}
        # From position 0 a stream's first version is 1; later, it is taken as given.
        self._firsts: dict[str, int] | None = {} if job.low else None
        self._tails: dict[tuple[str, str], tuple[int, bytes]] = {}
        self._frontier = Frontier.empty()  # over the positions [low, next)
        self._stops = sorted({s for s, _ in job.signed if s > job.low} | set(job.sizes))
        self._roots = dict(job.signed)
        self._blocks: list[bytes] = []
        self._prefixes: dict[int, tuple[bytes, ...]] = {}

    def _fail(self, position: int | None, message: str) -> None:
        if self.problem is None:
            self.problem = Problem(position, message)

    def feed(self, rows: Iterable[Sequence[Any]]) -> list[NodeSpan]:
        """Check a chunk of rows (the next positions). Returns the spans of stored Merkle nodes
        its leaves completed, for `compare_nodes`."""
        if self.problem is not None:
            return []
        sha, expected, prev = hashlib.sha256, self._next, self._prev
        versions, firsts, tails = self._versions, self._firsts, self._tails
        times, first_times = self._times, self._first_times
        pack = LEAF_HEAD.pack
        leaves: list[bytes] = []
        for row in rows:
            pos, eid, typ, sid, ver, rec, payload, pdig, att, prv, chained, leaf = row
            if pos != expected:
                what = "missing" if pos > expected else "out of order or duplicated"
                self._fail(expected, f"event {what} (next row has position {pos})")
                break
            if len(eid) != 16:
                self._fail(pos, f"{_event(eid)}: event_id is not 16 bytes ({len(eid)})")
                break
            if sha(payload).digest() != pdig:
                self._fail(pos, f"{_event(eid)}: payload_digest does not match the payload")
                break
            if prv != prev:
                before = f"the chain_hash of position {pos - 1}" if pos else "the genesis hash"
                self._fail(pos, f"{_event(eid)}: prev_hash is not {before}")
                break
            # The leaf data laid out as the committer does: the head, then the tail, made once
            # per (type, stream) pair (there are few) for events without attachments.
            tail = None if att else tails.get((typ, sid))
            if tail is None:
                typ_bytes = typ.encode()
                tail = (len(typ_bytes), leaf_tail(typ_bytes, sid.encode(), att))
                if not att:
                    if len(tails) > 100_000:
                        tails.clear()
                    tails[typ, sid] = tail
            data = pack(LEAF_MAGIC, pos, eid, rec, ver, pdig, prv, tail[0]) + tail[1]
            if chain_hash(prv, data) != chained:
                self._fail(pos, f"{_event(eid)}: chain_hash does not match the envelope")
                break
            if leaf_hash(data) != leaf:
                self._fail(pos, f"{_event(eid)}: leaf_hash does not match the envelope")
                break
            last = versions.get(sid)
            if last is None:
                last = 0 if firsts is None else firsts.setdefault(sid, ver) - 1
            if ver != last + 1:
                self._fail(
                    pos,
                    f"{_event(eid)}: stream_version {ver} of stream {sid!r} follows version {last}",
                )
                break
            then = times.get(sid)
            if then is None and firsts is not None:
                first_times[sid] = rec
            elif then is not None and rec < then:
                self._fail(
                    pos,
                    f"{_event(eid)}: recorded at {rec} µs, before version {last} of stream "
                    f"{sid!r} (recorded at {then} µs): time goes backwards along the stream",
                )
                break
            times[sid] = rec
            versions[sid] = ver
            leaves.append(leaf)
            prev = chained
            expected += 1
        self._next, self._prev = expected, prev
        spans = self._grow(leaves)
        return [] if self.problem is not None else spans

    def _at_stop(self) -> None:
        """Where the tree reached a size whose root or frontier is needed."""
        job, size = self._job, self._frontier.size + self._job.low
        self._stops.pop(0)
        below = self._frontier.size & ((1 << job.level) - 1)
        self._prefixes[size] = self._frontier.hashes[
            len(self._frontier.hashes) - below.bit_count() :
        ]
        signed = self._roots.get(size)
        if job.low == 0 and signed is not None and self._frontier.root() != signed:
            self._fail(
                None,
                f"the tree of the first {size} events does not have the signed root "
                "(events were rewritten consistently with the chain)",
            )

    def _grow(self, leaves: list[bytes]) -> list[NodeSpan]:
        low, level = self._job.low, self._job.level
        nodes: dict[NodeId, bytes] = {}
        offset = 0
        while offset < len(leaves):
            size = low + self._frontier.size
            take = len(leaves) - offset
            if self._stops:
                take = min(take, self._stops[0] - size)
            self._frontier, made = append_leaves(self._frontier, leaves[offset : offset + take])
            offset += take
            if level >= NO_BLOCKS:  # from position 0: the range's nodes are the tree's
                nodes.update(made)
            else:  # node (lv, i) of the range is the tree's (lv, i + low / 2**lv) up to `level`
                nodes.update(
                    ((lv, i + (low >> lv)), h) for (lv, i), h in made.items() if lv <= level
                )
            if self._stops and self._stops[0] == low + self._frontier.size:
                self._at_stop()
        start, end = low + self._frontier.size - len(leaves), low + self._frontier.size
        if level == 0:
            self._blocks += leaves
        elif level < NO_BLOCKS:
            self._blocks += [nodes[level, i] for i in range(start >> level, end >> level)]
        # The nodes of a level completed by the leaves start..end-1, up to the signed tree.
        end = min(end, self._job.sequenced_size)
        spans: list[NodeSpan] = []
        lv = 1
        while lv <= level and (end >> lv) - 1 >= start >> lv:
            first, last = start >> lv, (end >> lv) - 1
            spans.append(
                (lv, first, last, b"".join([nodes[lv, i] for i in range(first, last + 1)]))
            )
            lv += 1
        return spans

    def compare_nodes(
        self, spans: Sequence[NodeSpan], stored: Sequence[Sequence[Sequence[Any]]]
    ) -> None:
        """Compare `spans` with the stored rows (hash, idx) of each; the first differing node
        (in position order) is the problem."""
        if nodes_match(spans, stored):
            return
        found = {
            (span[0], r[1]): bytes(r[0])
            for span, rows in zip(spans, stored, strict=True)
            for r in rows
        }
        differ = [
            (i << lv, lv, i)
            for lv, first, last, hashes in spans
            for k, i in enumerate(range(first, last + 1))
            if found.get((lv, i)) != hashes[32 * k : 32 * k + 32]
        ]
        start, lv, i = min(differ)
        self._fail(
            start,
            f"Merkle node (level {lv}, index {i}) over positions {start}..{((i + 1) << lv) - 1} "
            "differs from the tree rebuilt from the events (rewritten events or node)",
        )

    def finish(self, *, at_end: bool) -> RangeResult:
        """The result, once every row was fed (`at_end`: the range reached the end of the log)."""
        if self.problem is None and at_end and self._job.low == 0:
            late = [size for size, _ in self._job.signed if size > self._next]
            if late:
                self._fail(
                    self._next,
                    f"a checkpoint signs {late[0]} events but the ledger ends at {self._next} "
                    "events",
                )
        return RangeResult(
            problem=self.problem,
            end=self._next,
            root=self._frontier.root() if self._job.low == 0 and self._next else None,
            first_prev=self._first_prev,
            last_chain=self._prev,
            first_versions=self._firsts or {},
            last_versions=self._versions,
            block_roots=b"".join(self._blocks),
            prefixes=self._prefixes,
            first_times=self._first_times,
            last_times=self._times,
        )


def nodes_match(spans: Sequence[NodeSpan], stored: Sequence[Sequence[Sequence[Any]]]) -> bool:
    """Whether the stored rows (hash, idx) of each span are exactly its expected nodes."""
    return all(
        span[3] == b"".join([bytes(r[0]) for r in rows])
        for span, rows in zip(spans, stored, strict=True)
    )


def join_ranges(
    results: Sequence[RangeResult],
    jobs: Sequence[RangeJob],
    count: int,
    signed: Sequence[tuple[int, bytes]],
) -> tuple[bytes, list[NodeSpan]] | None:
    """The root of the log of `count` events checked by the intact `results` of `jobs`, and the
    stored nodes above the blocks to compare; None when the ranges do not link up or one of the
    `signed` roots is not the one the blocks give (the one-range re-run then names the
    problem)."""
    versions: dict[str, int] = {}
    times: dict[str, int] = {}
    prev = GENESIS_HASH
    for job, result in zip(jobs, results, strict=True):
        if result.problem is not None or result.end != job.high or result.first_prev != prev:
            return None
        if any(v != versions.get(s, 0) + 1 for s, v in result.first_versions.items()):
            return None
        if any(t < times.get(s, t) for s, t in result.first_times.items()):
            return None
        versions.update(result.last_versions)
        times.update(result.last_times)
        prev = result.last_chain
    job, level = jobs[0], jobs[0].level
    blob = b"".join(r.block_roots for r in results)
    roots = [blob[i : i + 32] for i in range(0, len(blob), 32)]
    prefixes = {size: hashes for r in results for size, hashes in r.prefixes.items()}
    cuts = sorted({size >> level for size, _ in signed} | {count >> level})
    frontier, nodes, done = Frontier.empty(), dict[NodeId, bytes](), 0
    above: dict[int, tuple[bytes, ...]] = {0: ()}
    for cut in cuts:
        frontier, made = append_leaves(frontier, roots[done:cut])
        nodes.update(((lv + level, i), h) for (lv, i), h in made.items())
        above[cut], done = frontier.hashes, cut

    def root(size: int) -> bytes:
        low = prefixes[size] if size & ((1 << level) - 1) else ()
        return Frontier(size, above[size >> level] + low).root()

    if any(root(size) != expected for size, expected in signed):
        return None
    spans: list[NodeSpan] = []
    top = level + 1
    while job.sequenced_size >> top:
        last = (job.sequenced_size >> top) - 1
        spans.append((top, 0, last, b"".join(nodes[top, i] for i in range(last + 1))))
        top += 1
    return root(count), spans
