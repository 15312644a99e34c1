"""A bundle's event lines (docs/bundles.md): written by `event_line`, and read strictly with
`checkpoint.txt` — the same lines serve export folders' and pages' completeness proofs.

Every field of an event line is checked, not only those that make the leaf: an auditor cannot
trust a verifier that says "ok" to a line whose `leaf_hash` or `chain_hash` is false. A line is
refused when it is not in position order, when a member is missing, unknown or of the wrong
type, when `leaf_hash`/`chain_hash` are not the hashes of its bytes, when its `prev_hash` is not
the chain hash of the line before it at the previous position (or the genesis hash at position
0), and when its inclusion proof does not lead to the signed root. Each problem names the file,
the line, the event and the field (a JSON pointer into the line)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ledger import (
    GENESIS_HASH,
    Checkpoint,
    CheckpointBodyError,
    CheckpointFormatError,
    Envelope,
    InclusionChecker,
    InclusionProof,
    LedgerError,
    OriginMismatchError,
    VerifierKey,
    chain_hash,
    open_checkpoint,
)
from ledger.merkle import leaf_hash
from reports._errors import ReportsError

__all__ = ["EVENT_FIELDS", "ReadState", "event_line", "open_bundle_checkpoint", "read_events"]

EVENT_FIELDS = (
    "position",
    "event_id",
    "type",
    "stream_id",
    "stream_version",
    "recorded_at_us",
    "payload",
    "attachments",
    "prev_hash",
    "chain_hash",
    "leaf_hash",
    "proof",
)
"""The members of an event line, all required, no others."""

_MEMBERS = frozenset(EVENT_FIELDS)
_HEX32 = re.compile(r"[0-9a-f]{64}")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAX_U64 = 2**64 - 1

Problem = Callable[[str], None]


class _LineError(ReportsError):
    """A member of an event line is malformed (its JSON pointer and why)."""

    def __init__(self, pointer: str, why: str) -> None:
        super().__init__(f"{pointer}: {why}")


def event_line(envelope: Envelope, proof: dict[str, Any]) -> dict[str, Any]:
    """One line of `ledger/events.jsonl`: the envelope fields that make the leaf, the exact
    payload text, and the event's inclusion proof document."""
    return {
        "position": envelope.position,
        "event_id": str(envelope.event_id),
        "type": envelope.type,
        "stream_id": envelope.stream_id,
        "stream_version": envelope.stream_version,
        "recorded_at_us": envelope.recorded_at_us,
        "payload": envelope.payload.decode("utf-8"),
        "attachments": {k: v.hex() for k, v in sorted(envelope.attachment_digests.items())},
        "prev_hash": envelope.prev_hash.hex(),
        "chain_hash": envelope.chain_hash.hex(),
        "leaf_hash": envelope.leaf_hash.hex(),
        "proof": proof,
    }


def open_bundle_checkpoint(
    file: str, note: bytes, key: VerifierKey, problem: Problem
) -> Checkpoint | None:
    """The checkpoint of a bundle once it opens with `key`, or None and the problem saying
    which check failed: the note syntax, the key's signature, the body, or the origin."""
    try:
        return open_checkpoint(note, key)
    except CheckpointBodyError as exc:
        problem(f"{file}: malformed checkpoint body: {exc}")
    except OriginMismatchError as exc:
        problem(f"{file}: signed by key {key}, but {exc}")
    except CheckpointFormatError as exc:
        problem(f"{file}: not a signed note: {exc}")
    except LedgerError as exc:
        problem(f"{file}: does not verify with key {key}: {exc}")
    return None


def _parse(source: str) -> object:
    """A line's JSON value. orjson reads the lines; what it refuses goes to the standard parser,
    which accepts exactly what it accepted before (integers beyond 64 bits, NaN) and words its
    errors the same way."""
    try:
        return orjson.loads(source)
    except orjson.JSONDecodeError:
        return json.loads(source)


def _hash(line: dict[str, Any], member: str) -> bytes:
    value = line[member]
    if isinstance(value, str) and len(value) == 64:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        # Lowercase hex is exactly what decodes to 32 bytes and prints back unchanged.
        if len(raw) == 32 and raw.hex() == value:
            return raw
    raise _LineError(f"/{member}", f"expected 64 lowercase hex characters, got {value!r}")


def _u64(line: dict[str, Any], member: str, *, signed: bool = False) -> int:
    value = line[member]
    low = -(2**63) if signed else 0
    high = 2**63 - 1 if signed else _MAX_U64
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _LineError(f"/{member}", f"expected an integer in {low}..{high}, got {value!r}")
    return value


def _text(line: dict[str, Any], member: str) -> str:
    value = line[member]
    if not isinstance(value, str):
        raise _LineError(f"/{member}", f"expected a string, got {value!r}")
    return value


def _envelope(line: object) -> tuple[Envelope, bytes, bytes, dict[str, Any]]:
    """The envelope of a line (with its hashes recomputed), the line's `chain_hash` and
    `leaf_hash` as written, and its proof member."""
    if not isinstance(line, dict):
        raise _LineError("", "an event line is a JSON object")
    if line.keys() != _MEMBERS:
        for member in EVENT_FIELDS:
            if member not in line:
                raise _LineError(f"/{member}", "missing")
        unknown = sorted(set(line) - _MEMBERS)
        raise _LineError(f"/{unknown[0]}", "unknown member of an event line")
    event_text = _text(line, "event_id")
    # The canonical form is exactly what `str(uuid.UUID(...))` prints.
    if not _CANONICAL_UUID.fullmatch(event_text):
        raise _LineError("/event_id", f"expected a UUID in canonical form, got {event_text!r}")
    event_id = uuid.UUID(event_text)
    attachments = line["attachments"]
    if not isinstance(attachments, dict):
        raise _LineError(
            "/attachments", f"expected an object (name → SHA-256), got {attachments!r}"
        )
    digests = {}
    for name, value in attachments.items():
        if not isinstance(value, str) or not _HEX32.fullmatch(value):
            raise _LineError(f"/attachments/{name}", f"expected 64 lowercase hex, got {value!r}")
        digests[name] = bytes.fromhex(value)
    proof = line["proof"]
    if not isinstance(proof, dict):
        raise _LineError("/proof", f"expected an inclusion proof document, got {proof!r}")
    payload = _text(line, "payload").encode("utf-8")
    envelope = Envelope(
        position=_u64(line, "position"),
        event_id=event_id,
        type=_text(line, "type"),
        stream_id=_text(line, "stream_id"),
        stream_version=_u64(line, "stream_version"),
        recorded_at_us=_u64(line, "recorded_at_us", signed=True),
        payload=payload,
        payload_digest=hashlib.sha256(payload).digest(),
        attachment_digests=digests,
        prev_hash=_hash(line, "prev_hash"),
        chain_hash=b"",
        leaf_hash=b"",
    )
    try:
        data = envelope.leaf_data()
    except (LedgerError, ValueError, OverflowError) as exc:  # e.g. a name longer than 65,535
        raise _LineError("", f"does not encode as leaf data ({exc})") from None
    true = Envelope(
        envelope.position,
        event_id,
        envelope.type,
        envelope.stream_id,
        envelope.stream_version,
        envelope.recorded_at_us,
        payload,
        envelope.payload_digest,
        digests,
        envelope.prev_hash,
        chain_hash(envelope.prev_hash, data),
        leaf_hash(data),
    )
    return true, _hash(line, "chain_hash"), _hash(line, "leaf_hash"), proof


@dataclass
class Previous:
    """The last line read in position order: its number, position and chain hash."""

    line: int
    position: int
    chain: bytes


@dataclass
class ReadState:
    """Where the reading of a file stands, so that it can go on over the next lines: lines and
    bytes read, the previous line in position order, and whether the file stopped being read
    (it is not UTF-8)."""

    lines: int = 0
    offset: int = 0
    previous: Previous | None = None
    stopped: bool = False


def read_events(
    file: str,
    raw: Iterable[bytes],
    checkpoint: Checkpoint | None,
    problem: Problem,
    state: ReadState | None = None,
) -> Iterator[Envelope]:
    """The events of `file` (its lines as bytes, read as they come) that pass every check
    (against `checkpoint` when it opened), in file order; a problem for each that does not.
    `state` carries on from lines read before (by this function or a batch reader)."""
    at = ReadState() if state is None else state
    # One checker for all the lines: neighbouring events' paths share their upper nodes.
    inclusion = None if checkpoint is None else InclusionChecker(checkpoint.size, checkpoint.root)
    for line in raw:
        if at.stopped:
            return
        at.lines += 1
        number, previous = at.lines, at.previous
        try:
            source = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem(f"{file}: not UTF-8 (byte offset {at.offset + exc.start})")
            at.stopped = True
            return
        at.offset += len(line)
        source = source.rstrip("\r\n")
        where = f"{file} line {number}"
        try:
            envelope, chained, leaf, document = _envelope(_parse(source))
            proof = InclusionProof.from_document(document)
        except json.JSONDecodeError as exc:
            problem(f"{where}: not a bundled event (JSONDecodeError: {exc})")
            continue
        except _LineError as exc:
            problem(f"{where}{exc}")
            continue
        except LedgerError as exc:  # the proof's own ProofFormatError carries its pointer
            problem(f"{where}/proof: not a bundled event's proof ({exc})")
            continue
        found: list[tuple[str, str]] = []
        if previous is not None and envelope.position <= previous.position:
            found.append(
                (
                    "/position",
                    f"{envelope.position} is not after line {previous.line}'s "
                    f"{previous.position} (events must be in position order, each once)",
                )
            )
        elif envelope.position == 0 and envelope.prev_hash != GENESIS_HASH:
            found.append(
                (
                    "/prev_hash",
                    "position 0 must have the genesis hash (32 zero bytes)",
                )
            )
        elif (
            previous is not None
            and envelope.position == previous.position + 1
            and envelope.prev_hash != previous.chain
        ):
            found.append(
                (
                    "/prev_hash",
                    f"{envelope.prev_hash.hex()} is not the chain hash "
                    f"{previous.chain.hex()} of position {previous.position} (line "
                    f"{previous.line}): the chain is broken",
                )
            )
        if leaf != envelope.leaf_hash:
            found.append(
                (
                    "/leaf_hash",
                    f"its bytes hash to leaf {envelope.leaf_hash.hex()}, the line "
                    f"says {leaf.hex()}",
                )
            )
        if chained != envelope.chain_hash:
            found.append(
                (
                    "/chain_hash",
                    f"SHA-256(prev_hash ‖ leaf data) is {envelope.chain_hash.hex()}, "
                    f"the line says {chained.hex()}",
                )
            )
        if proof.leaf_hash != envelope.leaf_hash:
            found.append(
                (
                    "/proof/leaf_hash",
                    f"its bytes hash to leaf {envelope.leaf_hash.hex()}, the "
                    f"proof is for leaf {proof.leaf_hash.hex()}",
                )
            )
        elif proof.leaf_index != envelope.position:
            found.append(
                (
                    "/proof/leaf_index",
                    f"the proof is for leaf {proof.leaf_index}, the event is at "
                    f"position {envelope.position}",
                )
            )
        elif checkpoint is not None and proof.tree_size != checkpoint.size:
            found.append(
                (
                    "/proof/tree_size",
                    f"inclusion proof fails: the proof is for tree size "
                    f"{proof.tree_size}, the checkpoint signs size {checkpoint.size}",
                )
            )
        elif inclusion is not None and not inclusion.check(
            proof.leaf_hash, proof.leaf_index, proof.hashes
        ):
            found.append(
                (
                    "/proof/hashes",
                    f"inclusion proof fails: the path of leaf {proof.leaf_index} "
                    f"does not lead to the root signed at tree size {inclusion.tree_size}",
                )
            )
        for pointer, text in found:
            problem(f"{where}{pointer} (event {envelope.event_id}, {envelope.type}): {text}")
        if previous is None or envelope.position > previous.position:
            at.previous = Previous(number, envelope.position, envelope.chain_hash)
        if not found:
            yield envelope
