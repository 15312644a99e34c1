"""The ledger's byte formats and hashes (floor 1: pure, no I/O): the one definition that every
writer and verifier uses.

Everything a third party needs to re-verify a ledger is defined here and in docs/ledger.md:
the canonical payload bytes (RFC 8785), the attachment digest list, the leaf data, the chain
hash and the leaf hash; and the event types that carry them (`NewEvent`, `Envelope`).
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
from ledger.merkle import leaf_hash  # leaf hash = SHA-256(0x00 ‖ leaf data), RFC 6962

__all__ = [
    "GENESIS_HASH",
    "LEAF_HEAD",
    "LEAF_MAGIC",
    "Envelope",
    "NewEvent",
    "canonical_json",
    "chain_hash",
    "decode_attachment_digests",
    "encode_attachment_digests",
    "leaf_data",
    "leaf_hash",
    "leaf_tail",
]

LEAF_MAGIC = b"UHL1"
"""First four bytes of every leaf data: format name and version."""

GENESIS_HASH = bytes(32)
"""The prev hash of the event at position 0."""

LEAF_HEAD = struct.Struct(">4sQ16sqQ32s32sH")
"""The leaf data's fixed-size head: magic, position, event id, recorded_at_us, stream version,
payload digest, prev hash, u16 length of the type (docs/ledger.md)."""

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_MAX_NAME = 0xFFFF
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_sha256 = hashlib.sha256


_ASTRAL = re.compile(rb"[\xf0-\xf4]").search
"""A 4-byte UTF-8 sequence: a character outside the BMP (code point and UTF-16 orders differ)."""
_LEAVES = frozenset((str, int, bool, type(None)))
_INF = float("inf")
_NESTS = frozenset((dict, list, tuple))
# With STRICT_INTEGER orjson refuses integers outside ±(2**53 - 1), exactly those `rfc8785` refuses.
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def _scan(container: Any) -> int:
    """1 if a dict, list or tuple holds only exact dicts, lists, tuples, str, int, bool and None;
    2 if it also holds floats; 0 if it holds anything else (exact types: subclasses such as
    enums take the slow path)."""
    found = 1
    for item in container.values() if type(container) is dict else container:
        kind = type(item)
        if kind in _LEAVES:
            continue
        if kind is float:
            found = 2
            continue
        if kind in _NESTS:
            inner = _scan(item)
            if not inner:
                return 0
            if inner == 2:
                found = 2
            continue
        return 0
    return found


def _jcs_float(value: float) -> bytes:
    """ECMAScript's Number::toString of a finite float, as RFC 8785 §3.2.2.3 requires.

    Python's `repr` and ECMAScript pick the same digits (the shortest that round-trip, the
    closest to the value on a tie); only the layout differs: `1e-05` is `0.00001`, `1.6e-06`
    is `0.0000016`, `1.0` is `1`, `1e+16` is `10000000000000000`, `-0.0` is `0`.
    Raises ValueError for NaN and infinities, which JSON cannot hold.
    """
    if value != value or value in (_INF, -_INF):
        raise ValueError(f"{value} is not a JSON number")
    if value == 0:
        return b"0"
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    digits = all_digits.lstrip("0")
    # value = 0.<digits> x 10^point
    point = len(whole) + (int(exponent) if exponent else 0) - (len(all_digits) - len(digits))
    digits = digits.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        out = digits + "0" * (point - count)
    elif 0 < point <= 21:
        out = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        out = "0." + "0" * -point + digits
    else:
        shift = point - 1
        head = digits if count == 1 else f"{digits[0]}.{digits[1:]}"
        out = f"{head}e{'+' if shift >= 0 else '-'}{abs(shift)}"
    return (sign + out).encode()


def _with_fragments(value: Any) -> Any:
    """A copy of a `_scan`ned value with each float replaced by its JCS text as an
    `orjson.Fragment` (written verbatim)."""
    kind = type(value)
    if kind is float:
        return orjson.Fragment(_jcs_float(value))
    if kind is dict:
        return {key: _with_fragments(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_with_fragments(item) for item in value]
    return value


def _fast_canonical(value: object) -> bytes | None:
    """The JCS bytes through orjson, or None where orjson's output may differ from JCS.

    orjson with sorted keys writes exactly the JCS bytes for the `_scan`ned types, and for keys
    inside the Basic Multilingual Plane (its code point order is JCS's UTF-16 order there),
    once each float is replaced by its JCS text (`_jcs_float`, as a verbatim fragment). It
    must not be trusted further: it writes NaN as null, and serializes UUIDs, enums and
    `orjson.Fragment` that JCS refuses. orjson runs first: it refuses cycles and nesting
    deeper than 255 before the walk could recurse on them.
    """
    try:
        raw = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return None
    kind = type(value)
    if kind in _NESTS:
        found = _scan(value)
        if not found:
            return None
    elif kind in _LEAVES:
        found = 1
    elif kind is float:
        found = 2
    else:
        return None
    if not raw.isascii() and _ASTRAL(raw) is not None:
        return None
    if found == 2:
        try:
            return orjson.dumps(_with_fragments(value), option=_ORJSON_OPTIONS)
        except ValueError:  # NaN or an infinity: the slow path says so
            return None
    return raw


def canonical_json(value: object) -> bytes:
    """RFC 8785 (JCS) canonical UTF-8 bytes of a JSON-able value.

    Plain values (strings, safe integers, finite floats, booleans, null, arrays and objects,
    keys inside the Basic Multilingual Plane: every payload the services write) are written by
    orjson (`_fast_canonical`, each float laid out by `_jcs_float`), several times faster than
    `rfc8785`; anything else by `rfc8785`, the reference, which also refuses what JSON cannot
    say.
    """
    fast = _fast_canonical(value)
    if fast is not None:
        return fast
    try:
        return rfc8785.dumps(value)  # type: ignore[arg-type]
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


def leaf_tail(type_: bytes, stream_id: bytes, attachments: bytes) -> bytes:
    """The leaf data after its head: type ‖ u16 len(stream id) ‖ stream id ‖ u32 len ‖
    attachment digest list."""
    return b"".join(
        (type_, _U16.pack(len(stream_id)), stream_id, _U32.pack(len(attachments)), attachments)
    )


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
    head = LEAF_HEAD.pack(
        LEAF_MAGIC,
        position,
        event_id,
        recorded_at_us,
        stream_version,
        payload_digest,
        prev_hash,
        len(type_),
    )
    return head + leaf_tail(type_, stream_id, attachments)


def chain_hash(prev_hash: bytes, data: bytes) -> bytes:
    """chain hash = SHA-256(prev chain hash ‖ leaf data)."""
    return _sha256(prev_hash + data).digest()


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
