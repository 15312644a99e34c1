"""A bundle's event lines read a batch at a time, their checks in worker processes.

`reports._events.read_events` defines what a valid event line is and names each problem (file,
line, event, field). Running it line by line costs more per event than everything else the
verifier does, so `EventReader` first tries to accept a whole batch of lines at once:
`ledger.check_event_lines` parses them (orjson) and checks each rule of `read_events` over the
batch's columns — the members and their types, the hashes as lowercase hex (one decode per
column), the event ids as canonical UUIDs (one match per column), the leaf data, leaf hash and
chain hash recomputed, position order and the chain links, and each inclusion proof (one hash
per tree node the paths share). Only a batch where every line passes every check is accepted
there. Any other batch — a problem, or anything unusual such as a number beyond 64 bits — is
read again by `read_events`, which decides: the fast path never accepts a line `read_events`
refuses, it only accepts it sooner.

The batch checks run in a `concurrent.futures` executor (a process pool of `--workers`
processes: `verify_bundle`), several batches ahead of the events handed on, while this process
reads the lines' columns for the decisions. A batch is checked there against the position and
chain hash its predecessor's last line would leave if accepted; when that predecessor was read
line by line instead, the batch is checked again here against what it really left. Batches are
handed on in file order, each only once its own check has answered."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import orjson

from ledger import CheckedLines, Checkpoint, Envelope, check_event_lines
from reports._events import EVENT_FIELDS, Previous, Problem, ReadState, read_events

__all__ = ["EventBatch", "EventReader", "check_pool"]

_SIZE = 2048
"""Lines per batch handed on."""
_PART = 512
"""Lines per check: a check holds its lines parsed (~5 KB each), so a worker's memory grows
with this."""
_UNKNOWN = (-2, b"")
"""The assumed state after a batch whose columns did not read: no batch is checked against
it (a position is never -2), so the next one is checked here once its predecessor is read."""


@dataclass(slots=True)
class EventBatch:
    """Events that passed every check, column-wise, in file order; `envelope(i)` is the whole
    `i`-th event."""

    positions: list[int] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    stream_ids: list[str] = field(default_factory=list)
    stream_versions: list[int] = field(default_factory=list)
    recorded_at_us: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    lines: list[bytes] | None = None
    """The events' lines, when the batch was accepted at once (its envelopes are read from
    them when asked for: few are)."""
    envelopes: list[Envelope] | None = None
    """The events, when the batch was read line by line."""

    def __len__(self) -> int:
        return len(self.positions)

    def envelope(self, i: int) -> Envelope:
        """The `i`-th event as an `Envelope`."""
        if self.envelopes is not None:
            return self.envelopes[i]
        assert self.lines is not None
        line = orjson.loads(self.lines[i])
        payload = self.payloads[i]
        return Envelope(
            self.positions[i],
            uuid.UUID(self.event_ids[i]),
            self.types[i],
            self.stream_ids[i],
            self.stream_versions[i],
            self.recorded_at_us[i],
            payload,
            hashlib.sha256(payload).digest(),
            {name: bytes.fromhex(digest) for name, digest in line["attachments"].items()},
            bytes.fromhex(line["prev_hash"]),
            bytes.fromhex(line["chain_hash"]),
            bytes.fromhex(line["leaf_hash"]),
        )

    @classmethod
    def of(cls, envelopes: Iterable[Envelope]) -> EventBatch:
        """The batch of envelopes read one by one."""
        batch = cls(envelopes=[])
        assert batch.envelopes is not None
        for e in envelopes:
            batch.positions.append(e.position)
            batch.event_ids.append(str(e.event_id))
            batch.types.append(e.type)
            batch.stream_ids.append(e.stream_id)
            batch.stream_versions.append(e.stream_version)
            batch.recorded_at_us.append(e.recorded_at_us)
            batch.payloads.append(e.payload)
            batch.envelopes.append(e)
        return batch


def _ends(lines: list[bytes], part: int) -> list[tuple[int, bytes]] | None:
    """The position and chain hash the last line of each part of `part` lines says it leaves
    (None: one of those lines does not say; the lines are then checked here, when the lines
    before them are read)."""
    ends = []
    for i in range(0, len(lines), part):
        try:
            line = orjson.loads(lines[min(i + part, len(lines)) - 1])
            ends.append((int(line["position"]), bytes.fromhex(line["chain_hash"])))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
    return ends


def _batch(lines: list[bytes], parts: list[CheckedLines]) -> tuple[EventBatch, tuple[int, bytes]]:
    """The batch of accepted `lines` from the columns their checks read, and the position and
    chain hash its last line leaves."""
    batch = EventBatch(lines=lines)
    for checked in parts:
        batch.positions.extend(checked.positions)
        batch.event_ids.extend(checked.event_ids)
        batch.types.extend(checked.types)
        batch.stream_ids.extend(checked.stream_ids)
        batch.stream_versions.extend(checked.stream_versions)
        batch.recorded_at_us.extend(checked.recorded_at_us)
        batch.payloads.extend(checked.payloads)
    return batch, parts[-1].last


@dataclass(slots=True)
class _Pending:
    """A batch handed to the executor: its lines, their columns and the state each part's last
    line leaves, the state the first part was checked from, and each part's answer to come."""

    lines: list[bytes]
    ended: bool
    ends: list[tuple[int, bytes]] | None
    start: tuple[int, bytes] | None
    answers: list[Future[CheckedLines | None]]


def _done(value: CheckedLines | None) -> Future[CheckedLines | None]:
    future: Future[CheckedLines | None] = Future()
    future.set_result(value)
    return future


def check_pool(workers: int | None) -> ProcessPoolExecutor:
    """A pool of `workers` processes (None: one per CPU) for `ledger.check_event_lines`."""
    # spawn: a worker is a fresh interpreter that imports the ledger's batch checks (~35 MB,
    # a third of a second), not a fork of this process, which holds DuckDB's and Arrow's
    # threads; and it is this process's child, so its CPU time is counted with this one's.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers or os.cpu_count() or 1, mp_context=context)


class EventReader:
    """Reads the event lines of `file` against `checkpoint` (None: it did not open, and the
    lines are read one by one), sending each problem to `problem`. `executor` runs the batch
    checks (a process pool; None: this process, as each batch comes)."""

    def __init__(
        self,
        file: str,
        checkpoint: Checkpoint | None,
        problem: Problem,
        executor: Executor | None = None,
        *,
        ahead: int = 2,
        size: int = _SIZE,
        part: int = _PART,
    ) -> None:
        self.file = file
        self.checkpoint = checkpoint
        self.problem = problem
        self.executor = executor
        self.ahead = ahead
        """Batches in the executor's hands at most (each holds a few MB of lines)."""
        self.size, self.part = size, part
        """Lines per batch handed on, lines per check."""
        self.state = ReadState()
        self._pending: deque[_Pending] = deque()
        self._assumed: tuple[int, bytes] | None = None
        """The position and chain hash the submitted batches leave if all are accepted."""

    def batches(self, blocks: Iterable[bytes]) -> Iterator[EventBatch]:
        """The events that pass every check, a batch at a time, from the file's bytes given as
        blocks of any size."""
        rest = b""
        lines: list[bytes] = []
        for block in blocks:
            parts = (rest + block).split(b"\n")
            rest = parts.pop()
            lines.extend(parts)
            while len(lines) >= self.size:
                self._submit(lines[: self.size], ended=True)
                del lines[: self.size]
                while len(self._pending) > self.ahead:
                    yield from self._next()
            if self.state.stopped:
                return
        if rest:
            lines.append(rest)
        if lines:
            self._submit(lines, ended=not rest)
        while self._pending:
            yield from self._next()

    def _check(
        self, lines: list[bytes], start: tuple[int, bytes] | None
    ) -> tuple[EventBatch, tuple[int, bytes]] | None:
        checkpoint = self.checkpoint
        assert checkpoint is not None
        block = b"\n".join(lines)
        checked = check_event_lines(block, start, checkpoint.size, checkpoint.root, EVENT_FIELDS)
        return None if checked is None else _batch(lines, [checked])

    def _submit(self, lines: list[bytes], *, ended: bool) -> None:
        """Hand a batch (`lines` without their newlines; `ended`: the last one had one) to the
        executor, each part checked from the state the lines before it say they leave."""
        checkpoint, start = self.checkpoint, self._assumed
        ends = None if checkpoint is None else _ends(lines, self.part)
        answers: list[Future[CheckedLines | None]] = []
        if ends is not None and start is not _UNKNOWN:
            assert checkpoint is not None
            size, root, part = checkpoint.size, checkpoint.root, self.part
            for i, first in zip(range(0, len(lines), part), [start, *ends], strict=False):
                args = (b"\n".join(lines[i : i + part]), first, size, root, EVENT_FIELDS)
                if self.executor is None:
                    answers.append(_done(check_event_lines(*args)))
                    continue
                try:
                    answers.append(self.executor.submit(check_event_lines, *args))
                except BrokenExecutor:
                    answers.clear()  # a worker died (e.g. killed): checked here instead
                    break
        self._assumed = _UNKNOWN if ends is None else ends[-1]
        self._pending.append(_Pending(lines, ended, ends, start, answers))

    def _answer(
        self, pending: _Pending, at: tuple[int, bytes] | None
    ) -> tuple[EventBatch, tuple[int, bytes]] | None:
        """The batch once its checks accept it from the state `at` its predecessors left: each
        part's last line must leave the state the next part was checked from."""
        if pending.answers and pending.start == at:
            try:
                answers = [answer.result() for answer in pending.answers]
            except BrokenExecutor:
                pass  # a worker died (e.g. killed): the batch is checked here
            else:
                parts = [a for a in answers if a is not None]
                if len(parts) < len(answers) or [a.last for a in parts] != pending.ends:
                    return None
                return _batch(pending.lines, parts)
        # Checked from another state than its predecessor left, or not at all: here.
        return self._check(pending.lines, at)

    def _next(self) -> Iterator[EventBatch]:
        """The first pending batch's events, once its checks have answered."""
        pending, state = self._pending.popleft(), self.state
        if state.stopped:
            return
        at = None if state.previous is None else (state.previous.position, state.previous.chain)
        accepted = None if pending.ends is None else self._answer(pending, at)
        if accepted is not None:
            lines = pending.lines
            state.lines += len(lines)
            state.offset += sum(map(len, lines)) + len(lines)
            state.previous = Previous(state.lines, *accepted[1])
            yield accepted[0]
            return
        raw = [line + b"\n" for line in pending.lines]
        if not pending.ended:
            raw[-1] = pending.lines[-1]
        events = read_events(self.file, raw, self.checkpoint, self.problem, state)
        yield EventBatch.of(events)
