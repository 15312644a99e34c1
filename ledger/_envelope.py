"""The event envelope and its byte formats (floor 1: pure, no I/O).

Everything a third party needs to re-verify a ledger is defined here and in docs/ledger.md:
the canonical payload bytes, the attachment digest list, the leaf data, the chain hash and the
leaf hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import rfc8785

from ledger._errors import InvalidEventError

__all__ = [
    "GENESIS_HASH",
    "LEAF_MAGIC",
    "Envelope",
    "NewEvent",
    "canonical_json",
    "chain_hash",
    "decode_attachment_digests",
    "encode_attachment_digests",
    "leaf_data",
]

LEAF_MAGIC = b"UHL1"
"""First four bytes of every leaf data: format name and version."""

GENESIS_HASH = bytes(32)
"""The prev hash of the event at position 0."""

_HEAD = struct.Struct(">4sQ16sqQ32s32sH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_MAX_NAME = 0xFFFF
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# Outside strings, Python's JSON numbers differ from RFC 8785's only with an exponent, for
# integral floats ("1.0", "-0.0") and beyond 2**53 (16+ digits): those take the slow path.
# They are found on the "shape" of the text outside the strings: every digit mapped to "0",
# "e"/"E" to "e", "." kept, everything else to a space; then three substring searches.
_SHAPE = bytes(
    ord("0") if 0x30 <= b <= 0x39 else b if b == 0x2E else 0x65 if b in (0x45, 0x65) else 0x20
    for b in range(256)
)
_SIXTEEN_DIGITS = b"0" * 16
_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode


def _divergent(raw: bytes) -> bool:
    """Whether the C encoder's bytes might differ from RFC 8785's (see above)."""
    # Everything outside the JSON strings: split on quotes unless a string holds one.
    outside = _STRINGS.sub(b"", raw) if b'\\"' in raw else b"".join(raw.split(b'"')[::2])
    shape = outside.translate(_SHAPE)
    return b"0e" in shape or b".0 " in shape or shape.endswith(b".0") or _SIXTEEN_DIGITS in shape


_ASTRAL = re.compile(rb"[\xf0-\xf4]").search
"""A 4-byte UTF-8 sequence: a character outside the BMP (code point and UTF-16 orders differ)."""
_LEAVES = frozenset((str, int, bool, type(None)))
_NESTS = frozenset((dict, list, tuple))
# With STRICT_INTEGER orjson refuses integers outside ±(2**53 - 1), exactly those `rfc8785` refuses.
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def _plain(container: Any) -> bool:
    """Whether a dict, list or tuple holds only exact dicts, lists, tuples, str, int, bool and
    None (exact types: subclasses such as enums take the slow path)."""
    for item in container.values() if type(container) is dict else container:
        kind = type(item)
        if kind in _LEAVES:
            continue
        if kind in _NESTS and _plain(item):
            continue
        return False
    return True


def _fast_canonical(value: object) -> bytes | None:
    """The JCS bytes through orjson, or None where orjson's output may differ from JCS.

    orjson with sorted keys writes exactly the JCS bytes for the `_plain` types, and for keys
    inside the Basic Multilingual Plane (its code point order is JCS's UTF-16 order there). It
    must not be trusted further: it writes floats in Python's forms (`1.0`, `1e+16`), NaN as
    null, and serializes UUIDs, enums and `orjson.Fragment` that JCS refuses. orjson runs
    first: it refuses cycles and nesting deeper than 255 before the walk could recurse on them.
    """
    try:
        raw = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return None
    kind = type(value)
    if not ((kind in _NESTS and _plain(value)) or kind in _LEAVES):
        return None
    if not raw.isascii() and _ASTRAL(raw) is not None:
        return None
    return raw


def canonical_json(value: object) -> bytes:
    """RFC 8785 (JCS) canonical UTF-8 bytes of a JSON-able value.

    Plain values (strings, safe integers, booleans, null, arrays and objects, keys inside the
    Basic Multilingual Plane) are written by orjson (`_fast_canonical`). Otherwise the C JSON
    encoder with sorted keys produces exactly the JCS bytes except for a few number forms and for
    keys outside the BMP (UTF-16 vs code point order); those cases are detected on the output
    and re-encoded with `rfc8785`. Several times faster than `rfc8785` alone on decision-sized
    payloads.
    """
    fast = _fast_canonical(value)
    if fast is not None:
        return fast
    try:
        try:
            text = _dumps(value)
        except (TypeError, ValueError):
            return rfc8785.dumps(value)  # type: ignore[arg-type]
        raw = text.encode("utf-8")
        if _divergent(raw) or (len(raw) != len(text) and max(text) > "\uffff"):
            return rfc8785.dumps(value)  # type: ignore[arg-type]
        return raw
    except (UnicodeEncodeError, rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidEventError(f"payload is not canonical JSON material: {exc}") from exc


def _check_name(what: str, name: str) -> bytes:
    if not isinstance(name, str) or not name:
        raise InvalidEventError(f"{what} must be a non-empty string, got {name!r}")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEventError(f"{what} {name!r} is not valid UTF-8 text") from exc
    if len(raw) > _MAX_NAME:
        raise InvalidEventError(f"{what} is {len(raw)} bytes long, the limit is {_MAX_NAME}")
    return raw


def encode_attachment_digests(digests: Mapping[str, bytes]) -> bytes:
    """The attachment list as hashed into the leaf: for each name in sorted UTF-8 byte order,
    u16 length ‖ name ‖ 32-byte SHA-256 of the attachment bytes. Empty when there is none."""
    parts: list[bytes] = []
    for raw, digest in sorted(
        (_check_name("attachment name", name), digest) for name, digest in digests.items()
    ):
        parts.append(_U16.pack(len(raw)) + raw + digest)
    return b"".join(parts)


def decode_attachment_digests(encoded: bytes) -> dict[str, bytes]:
    """Inverse of `encode_attachment_digests`."""
    out: dict[str, bytes] = {}
    offset = 0
    while offset < len(encoded):
        (length,) = _U16.unpack_from(encoded, offset)
        offset += 2
        name = encoded[offset : offset + length].decode("utf-8")
        offset += length
        out[name] = encoded[offset : offset + 32]
        offset += 32
    return out


def leaf_data(
    position: int,
    event_id: bytes,
    recorded_at_us: int,
    stream_version: int,
    payload_digest: bytes,
    prev_hash: bytes,
    type_: bytes,
    stream_id: bytes,
    attachments: bytes,
) -> bytes:
    """The exact bytes an event contributes to the chain and to the Merkle tree (docs/ledger.md)."""
    return b"".join(
        (
            _HEAD.pack(
                LEAF_MAGIC,
                position,
                event_id,
                recorded_at_us,
                stream_version,
                payload_digest,
                prev_hash,
                len(type_),
            ),
            type_,
            _U16.pack(len(stream_id)),
            stream_id,
            _U32.pack(len(attachments)),
            attachments,
        )
    )


def chain_hash(prev_hash: bytes, data: bytes) -> bytes:
    """chain hash = SHA-256(prev chain hash ‖ leaf data)."""
    return hashlib.sha256(prev_hash + data).digest()


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. `payload` is any JSON-able mapping; it is stored as RFC 8785 bytes.

    `attachments` are erasable named byte strings (e.g. a request body): only their SHA-256
    digests enter the hashed envelope, so erasing the bytes later keeps `verify` green.
    `event_id` is normally left out: the store then assigns a time-ordered UUIDv7.
    """

    type: str
    stream_id: str
    payload: Mapping[str, Any]
    attachments: Mapping[str, bytes] = field(default_factory=dict)
    event_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """A recorded event: its place in the log, its hashes and its canonical payload bytes."""

    position: int
    event_id: uuid.UUID
    type: str
    stream_id: str
    stream_version: int
    recorded_at_us: int
    payload: bytes
    payload_digest: bytes
    attachment_digests: Mapping[str, bytes]
    prev_hash: bytes
    chain_hash: bytes
    leaf_hash: bytes

    @property
    def recorded_at(self) -> datetime:
        """When the store recorded the event (UTC, microsecond precision)."""
        return _EPOCH + timedelta(microseconds=self.recorded_at_us)

    def payload_json(self) -> Any:
        """The payload decoded from its canonical bytes."""
        return json.loads(self.payload)

    def leaf_data(self) -> bytes:
        """The leaf data bytes of this event (what `leaf_hash` and `chain_hash` are taken over)."""
        return leaf_data(
            self.position,
            self.event_id.bytes,
            self.recorded_at_us,
            self.stream_version,
            self.payload_digest,
            self.prev_hash,
            self.type.encode("utf-8"),
            self.stream_id.encode("utf-8"),
            encode_attachment_digests(self.attachment_digests),
        )

    def to_json(self) -> dict[str, Any]:
        """The envelope and its decoded payload as a JSON-able dict (hashes in lowercase hex)."""
        return {
            "position": self.position,
            "event_id": str(self.event_id),
            "type": self.type,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "recorded_at": self.recorded_at.isoformat().replace("+00:00", "Z"),
            "payload_digest": self.payload_digest.hex(),
            "attachments": {k: v.hex() for k, v in sorted(self.attachment_digests.items())},
            "prev_hash": self.prev_hash.hex(),
            "chain_hash": self.chain_hash.hex(),
            "leaf_hash": self.leaf_hash.hex(),
            "payload": self.payload_json(),
        }
