"""A bundle's event lines read a batch at a time, every check made column-wise.

`reports._events.read_events` defines what a valid event line is and names each problem (file,
line, event, field). Running it line by line costs more per event than everything else the
verifier does, so `EventReader` first tries to accept a whole batch of lines at once: it parses
them (orjson), then checks each rule of `read_events` over the batch's columns — the members and
their types, the hashes as lowercase hex (one decode per column), the event ids as canonical
UUIDs (one match per column), the leaf data, leaf hash and chain hash recomputed
(`ledger.event_hashes`), position order and the chain links, and each inclusion proof
(`InclusionChecker.check_documents`, one hash per tree node the paths share). Only a batch
where every line passes every check is accepted there. Any other batch — a problem, or anything
unusual such as a number beyond 64 bits — is read again by `read_events`, which decides: the
fast path never accepts a line `read_events` refuses, it only accepts it sooner."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from ledger import (
    GENESIS_HASH,
    Checkpoint,
    Envelope,
    InclusionChecker,
    InvalidEventError,
    event_hashes,
)
from reports._events import EVENT_FIELDS, Previous, Problem, ReadState, read_events

__all__ = ["EventBatch", "EventReader"]

_MEMBERS = frozenset(EVENT_FIELDS)
_FIELDS = itemgetter(*EVENT_FIELDS)
_UUIDS = re.compile(r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})*")
_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_U64 = 2**64 - 1
_MIN_I64, _MAX_I64 = -(2**63), 2**63 - 1
_SIZE = 2048
"""Lines per batch."""


@dataclass(slots=True)
class EventBatch:
    """Events that passed every check, column-wise, in file order."""

    positions: list[int] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    stream_ids: list[str] = field(default_factory=list)
    stream_versions: list[int] = field(default_factory=list)
    recorded_at_us: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    payload_digests: list[bytes] = field(default_factory=list)
    attachments: list[dict[str, bytes]] = field(default_factory=list)
    prev_hashes: list[bytes] = field(default_factory=list)
    chain_hashes: list[bytes] = field(default_factory=list)
    leaf_hashes: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.positions)

    def envelope(self, i: int) -> Envelope:
        """The `i`-th event as an `Envelope`."""
        return Envelope(
            self.positions[i],
            uuid.UUID(self.event_ids[i]),
            self.types[i],
            self.stream_ids[i],
            self.stream_versions[i],
            self.recorded_at_us[i],
            self.payloads[i],
            self.payload_digests[i],
            self.attachments[i],
            self.prev_hashes[i],
            self.chain_hashes[i],
            self.leaf_hashes[i],
        )

    @classmethod
    def of(cls, envelopes: Iterable[Envelope]) -> EventBatch:
        """The batch of envelopes read one by one."""
        batch = cls()
        for e in envelopes:
            batch.positions.append(e.position)
            batch.event_ids.append(str(e.event_id))
            batch.types.append(e.type)
            batch.stream_ids.append(e.stream_id)
            batch.stream_versions.append(e.stream_version)
            batch.recorded_at_us.append(e.recorded_at_us)
            batch.payloads.append(e.payload)
            batch.payload_digests.append(e.payload_digest)
            batch.attachments.append(dict(e.attachment_digests))
            batch.prev_hashes.append(e.prev_hash)
            batch.chain_hashes.append(e.chain_hash)
            batch.leaf_hashes.append(e.leaf_hash)
        return batch


def _ints(column: tuple[Any, ...], low: int, high: int) -> bool:
    # `type(...) is int` leaves booleans out, as `read_events` does.
    return set(map(type, column)) == {int} and low <= min(column) and max(column) <= high


def _texts(column: tuple[Any, ...]) -> bool:
    return set(map(type, column)) == {str}


def _hashes(column: tuple[Any, ...]) -> list[bytes] | None:
    """32-byte hashes from lowercase hex strings of 64 characters, in one decode."""
    if not _texts(column) or set(map(len, column)) != {64}:
        return None
    joined = "".join(column)
    try:
        raw = bytes.fromhex(joined)
    except ValueError:
        return None
    # Lowercase hex is exactly what decodes and prints back unchanged.
    if raw.hex() != joined:
        return None
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


def _attachments(value: object) -> dict[str, bytes] | None:
    if type(value) is not dict:
        return None
    if not value:
        return {}
    digests = {}
    for name, digest in value.items():
        if type(digest) is not str or not _HEX.fullmatch(digest):
            return None
        digests[name] = bytes.fromhex(digest)
    return digests


class EventReader:
    """Reads the event lines of `file` against `checkpoint` (None: it did not open, and the
    lines are read one by one), sending each problem to `problem`."""

    def __init__(self, file: str, checkpoint: Checkpoint | None, problem: Problem) -> None:
        self.file = file
        self.checkpoint = checkpoint
        self.problem = problem
        self.state = ReadState()
        self.inclusion = (
            None if checkpoint is None else InclusionChecker(checkpoint.size, checkpoint.root)
        )

    def batches(self, blocks: Iterable[bytes]) -> Iterator[EventBatch]:
        """The events that pass every check, a batch at a time, from the file's bytes given as
        blocks of any size."""
        rest = b""
        lines: list[bytes] = []
        for block in blocks:
            parts = (rest + block).split(b"\n")
            rest = parts.pop()
            lines.extend(parts)
            while len(lines) >= _SIZE:
                yield self._batch(lines[:_SIZE], ended=True)
                del lines[:_SIZE]
            if self.state.stopped:
                return
        if rest:
            lines.append(rest)
        if lines:
            yield self._batch(lines, ended=not rest)

    def _batch(self, lines: list[bytes], *, ended: bool) -> EventBatch:
        """The events of `lines` (without their newlines; `ended`: the last one had one)."""
        accepted = None if self.state.stopped else self._accept(lines)
        if accepted is not None:
            return accepted
        raw = [line + b"\n" for line in lines]
        if not ended:
            raw[-1] = lines[-1]
        return EventBatch.of(read_events(self.file, raw, self.checkpoint, self.problem, self.state))

    def _accept(self, lines: list[bytes]) -> EventBatch | None:
        """The batch when every line passes every check, else None (nothing is said)."""
        inclusion, state = self.inclusion, self.state
        if inclusion is None:
            return None
        try:
            docs = list(map(orjson.loads, lines))
        except orjson.JSONDecodeError:
            return None
        if not all(type(d) is dict and d.keys() == _MEMBERS for d in docs):
            return None
        (
            positions,
            event_ids,
            types,
            stream_ids,
            versions,
            recorded,
            payloads,
            attached,
            prevs,
            chains,
            leaves,
            proofs,
        ) = zip(*map(_FIELDS, docs), strict=True)
        if not (
            _ints(positions, 0, _MAX_U64)
            and _ints(versions, 0, _MAX_U64)
            and _ints(recorded, _MIN_I64, _MAX_I64)
            and _texts(event_ids)
            and _texts(types)
            and _texts(stream_ids)
            and _texts(payloads)
            and set(map(len, event_ids)) == {36}
            and _UUIDS.fullmatch("".join(event_ids))
        ):
            return None
        prev_hashes, chain_hashes, leaf_hashes = _hashes(prevs), _hashes(chains), _hashes(leaves)
        if prev_hashes is None or chain_hashes is None or leaf_hashes is None:
            return None
        attachments: list[dict[str, bytes]] = []
        for value in attached:
            named = _attachments(value)
            if named is None:
                return None
            attachments.append(named)
        ids = bytes.fromhex("".join(event_ids).replace("-", ""))
        try:
            payload_bytes = [p.encode("utf-8") for p in payloads]
            digests = [hashlib.sha256(p).digest() for p in payload_bytes]
            true_leaves, true_chains = event_hashes(
                positions,
                [ids[i : i + 16] for i in range(0, len(ids), 16)],
                recorded,
                versions,
                digests,
                prev_hashes,
                [t.encode("utf-8") for t in types],
                [s.encode("utf-8") for s in stream_ids],
                attachments,
            )
        except (UnicodeEncodeError, InvalidEventError, OverflowError, ValueError):
            return None  # struct.error is a ValueError
        if true_leaves != leaf_hashes or true_chains != chain_hashes:
            return None
        previous = state.previous
        last, chain = (-1, b"") if previous is None else (previous.position, previous.chain)
        for position, prev, chained in zip(positions, prev_hashes, chain_hashes, strict=True):
            if position <= last:
                return None
            if position == 0:
                if prev != GENESIS_HASH:
                    return None
            elif position == last + 1 and prev != chain:
                return None
            last, chain = position, chained
        if not inclusion.check_documents(leaf_hashes, positions, proofs):
            return None
        state.lines += len(lines)
        state.offset += sum(map(len, lines)) + len(lines)
        state.previous = Previous(state.lines, last, chain)
        return EventBatch(
            list(positions),
            list(event_ids),
            list(types),
            list(stream_ids),
            list(versions),
            list(recorded),
            payload_bytes,
            digests,
            attachments,
            prev_hashes,
            chain_hashes,
            leaf_hashes,
        )
