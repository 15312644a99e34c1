"""Ed25519 note keys in the format of golang.org/x/mod/sumdb/note and C2SP signed-note.

- key ID = the first 4 bytes (big-endian) of ``SHA-256(name || 0x0A || 0x01 || public key)``;
- verifier key: ``<name>+<8 hex key ID>+<base64(0x01 || public key)>``;
- signer key: ``PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte seed)>``.

Key names are non-empty and hold neither Unicode spaces nor ``+``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from hashlib import sha256
from typing import ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ledger._errors import VerifierKeyError

__all__ = [
    "Ed25519NoteKey",
    "Ed25519PublicNoteKey",
    "SigningKey",
    "VerifierKey",
    "compute_key_id",
    "parse_signer_key",
    "parse_verifier_key",
    "split_key",
]

ALG_ED25519 = 0x01
_HEX_ID = re.compile(r"[0-9a-fA-F]{8}")
_SIGNER_PREFIX = "PRIVATE+KEY+"


def valid_utf8(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8 (a Python str may hold lone surrogates; a note may not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def valid_key_name(name: str) -> bool:
    """A note key name: non-empty UTF-8, no Unicode space, no ``+`` (C2SP signed-note)."""
    return (
        isinstance(name, str)
        and bool(name)
        and "+" not in name
        and not any(c.isspace() for c in name)
        and valid_utf8(name)
    )


def decode_b64(text: str) -> bytes | None:
    """Strict, canonical standard base64: the bytes, or None if ``text`` is not exactly the
    encoding of some bytes (so no two texts decode to the same bytes)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def compute_key_id(name: str, public_key: bytes, key_type: int = ALG_ED25519) -> int:
    """The C2SP signed-note key ID of an Ed25519 key of signature type ``key_type`` (0x01 for a
    note signer, 0x04 for a cosignature/v1 witness): the first 4 bytes, big-endian, of
    ``SHA-256(name || 0x0A || key_type || public key)``."""
    digest = sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def split_key(text: str, what: str, key_type: int = ALG_ED25519) -> tuple[str, int, bytes]:
    """``name+hexid+base64(key_type || 32 bytes)`` -> (name, key ID, the 32 bytes).

    One parser for every key string of signed notes — log verifier and signer keys (type 0x01)
    and witness keys (type 0x04) — so they refuse the same malformations the same way."""
    name, sep1, rest = text.partition("+")
    hex_id, sep2, encoded = rest.partition("+")
    if not (sep1 and sep2):
        raise VerifierKeyError(f"{what} is not '<name>+<hex key ID>+<base64 key>'")
    if not valid_key_name(name):
        raise VerifierKeyError(f"{what}: key name {name!r} is empty or holds a space")
    if not _HEX_ID.fullmatch(hex_id):
        raise VerifierKeyError(f"{what}: key ID {hex_id!r} is not 8 hex digits")
    raw = decode_b64(encoded)
    if raw is None:
        raise VerifierKeyError(f"{what}: the key part is not canonical standard base64")
    if len(raw) != 33 or raw[0] != key_type:
        got = f"type 0x{raw[0]:02x}" if raw else "empty"
        raise VerifierKeyError(
            f"{what}: not an Ed25519 key of type 0x{key_type:02x} (type byte and 32 bytes; "
            f"got {got}, {max(len(raw) - 1, 0)} bytes)"
        )
    return name, int(hex_id, 16), raw[1:]


@dataclass(frozen=True, slots=True)
class Ed25519PublicNoteKey:
    """The public half of an `Ed25519NoteKey`: key name, key ID (of the class's signature type)
    and the 32-byte Ed25519 public key."""

    KEY_TYPE: ClassVar[int] = ALG_ED25519
    name: str
    key_id: int
    public_key: bytes

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise VerifierKeyError(f"key name {self.name!r} is empty or holds a space or '+'")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise VerifierKeyError(f"an Ed25519 public key is 32 bytes, got {self.public_key!r}")
        expected = compute_key_id(self.name, self.public_key, self.KEY_TYPE)
        if self.key_id != expected:
            raise VerifierKeyError(
                f"key ID {self.key_id:08x} is not the ID of key {self.name!r} ({expected:08x})"
            )

    def __str__(self) -> str:
        """The key string ``<name>+<hex key ID>+<base64(type || public key)>``."""
        encoded = base64.b64encode(bytes([self.KEY_TYPE]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{encoded}"


@dataclass(frozen=True, slots=True)
class VerifierKey(Ed25519PublicNoteKey):
    """An Ed25519 note verifier (signature type 0x01): key name, key ID, 32-byte public key."""

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Ed25519NoteKey:
    """An Ed25519 private key with its key name and the key ID of its signature type.

    The shared shape of the log's signing key (`SigningKey`, type 0x01) and a witness's
    cosigning key (`CosignerKey`, type 0x04): only the type byte differs."""

    KEY_TYPE = ALG_ED25519
    __slots__ = ("_key", "_public", "key_id", "name")

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        if not valid_key_name(name):
            raise VerifierKeyError(f"key name {name!r} is empty or holds a space or '+'")
        self.name = name
        self._key = key
        self._public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = compute_key_id(name, self._public, self.KEY_TYPE)

    @classmethod
    def generate(cls, name: str) -> Self:
        """A fresh random key named ``name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> Self:
        """The key with the 32-byte Ed25519 private seed ``raw``."""
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise VerifierKeyError("an Ed25519 private key is a 32-byte seed")
        return cls(name, Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def parse_secret(cls, text: str, what: str) -> Self:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>`` (the signer-key
        string of golang.org/x/mod/sumdb/note with this class's type byte)."""
        if not isinstance(text, str) or not text.strip().startswith(_SIGNER_PREFIX):
            raise VerifierKeyError(f"a {what} starts with 'PRIVATE+KEY+'")
        body = text.strip()[len(_SIGNER_PREFIX) :]
        name, key_id, seed = split_key(body, what, cls.KEY_TYPE)
        key = cls.from_private_bytes(name, seed)
        if key.key_id != key_id:
            raise VerifierKeyError(
                f"{what}: key ID {key_id:08x} is not the ID of this key ({key.key_id:08x})"
            )
        return key

    def private_bytes(self) -> bytes:
        """The 32-byte private seed (keep it secret)."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def public_bytes(self) -> bytes:
        """The 32-byte public key."""
        return self._public

    def secret(self) -> str:
        """``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>`` (keep it secret)."""
        encoded = base64.b64encode(bytes([self.KEY_TYPE]) + self.private_bytes()).decode("ascii")
        return f"{_SIGNER_PREFIX}{self.name}+{self.key_id:08x}+{encoded}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, key_id={self.key_id:08x})"


class SigningKey(Ed25519NoteKey):
    """An Ed25519 note signing key with its key name (the log's checkpoint key)."""

    __slots__ = ()

    def verifier(self) -> VerifierKey:
        """The matching verifier."""
        return VerifierKey(self.name, self.key_id, self._public)

    def verifier_key(self) -> str:
        """The verifier key string to publish: ``<name>+<hex key ID>+<base64(0x01 || key)>``."""
        return str(self.verifier())

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse a verifier key string ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
    if not isinstance(text, str):
        raise VerifierKeyError("a verifier key is a string")
    name, key_id, public = split_key(text.strip(), "verifier key")
    return VerifierKey(name, key_id, public)


def parse_signer_key(text: str) -> SigningKey:
    """Parse a signer key string ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
    return SigningKey.parse_secret(text, "signer key")
