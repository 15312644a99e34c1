"""C2SP tlog-cosignature v1 (https://c2sp.org/tlog-cosignature), the Ed25519 type.

A cosignature is a note signature line on a checkpoint by a witness:
``— <witness name> base64(key ID || timestamp || signature)`` where

- the key ID is the first 4 bytes of ``SHA-256(name || 0x0A || 0x04 || 32-byte public key)``
  (signature type 0x04, so a witness key never has the ID of a log key of the same bytes);
- the timestamp is 8 bytes, big-endian, POSIX seconds, at most 2^63 - 1;
- the signature is Ed25519 over ``cosignature/v1\\ntime <timestamp>\\n`` followed by the whole
  checkpoint note text (final newline included, signature lines excluded).

A witness key is published as a C2SP vkey ``<name>+<hex key ID>+<base64(0x04 || public key)>``.
The cosigner's secret is kept as ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>``, the
signer-key shape of golang.org/x/mod/sumdb/note with the cosignature type byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger._errors import CheckpointFormatError, VerifierKeyError
from ledger._keys import Ed25519NoteKey, Ed25519PublicNoteKey, split_key
from ledger._note import NoteSignature, parse_note, signature_line

__all__ = [
    "COSIGNATURE_V1_TYPE",
    "CosignatureCheck",
    "CosignerKey",
    "CosignerVerifier",
    "check_cosignatures",
    "cosignature_message",
    "parse_cosigner_key",
    "parse_cosigner_secret",
    "signature_line",
]

COSIGNATURE_V1_TYPE = 0x04
"""The C2SP signature type byte of Ed25519 cosignature/v1 keys."""

_MAX_TIMESTAMP = 2**63 - 1
_SIGNATURE_BYTES = 8 + 64


def cosignature_message(body: str, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signs: the header line, the time line and the checkpoint's
    whole note text."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise CheckpointFormatError(f"cosignature timestamp {timestamp!r} is not an integer")
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise CheckpointFormatError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    if not body.endswith("\n"):
        raise CheckpointFormatError("the cosigned checkpoint text must end with a newline")
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True, slots=True)
class CosignerVerifier(Ed25519PublicNoteKey):
    """A witness's public key (signature type 0x04): name, key ID and the 32-byte Ed25519
    public key; its string is the vkey ``<name>+<hex key ID>+<base64(0x04 || public key)>``."""

    KEY_TYPE: ClassVar[int] = COSIGNATURE_V1_TYPE

    def matches(self, signature: NoteSignature) -> bool:
        """Whether a signature line names this key (same name and key ID)."""
        return signature.name == self.name and signature.key_id == self.key_id

    def verify(self, body: str, signature: NoteSignature) -> int | None:
        """The cosignature's timestamp if ``signature`` is this key's valid cosignature/v1 of
        the checkpoint text ``body``, else None."""
        if not self.matches(signature) or len(signature.signature) != _SIGNATURE_BYTES:
            return None
        timestamp = int.from_bytes(signature.signature[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            return None
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                signature.signature[8:], cosignature_message(body, timestamp)
            )
        except (InvalidSignature, CheckpointFormatError):
            return None
        return timestamp


class CosignerKey(Ed25519NoteKey):
    """A witness's Ed25519 cosigning key with its name (signature type 0x04)."""

    KEY_TYPE = COSIGNATURE_V1_TYPE
    __slots__ = ()

    def verifier(self) -> CosignerVerifier:
        """The public half."""
        return CosignerVerifier(self.name, self.key_id, self._public)

    def cosign(self, body: str, timestamp: int) -> NoteSignature:
        """The cosignature/v1 of the checkpoint note text ``body`` at POSIX time ``timestamp``."""
        message = cosignature_message(body, timestamp)
        raw = timestamp.to_bytes(8, "big") + self._key.sign(message)
        return NoteSignature(self.name, self.key_id, raw)


def parse_cosigner_key(text: str) -> CosignerVerifier:
    """Parse a witness vkey ``<name>+<hex key ID>+<base64(0x04 || public key)>``."""
    if not isinstance(text, str):
        raise VerifierKeyError("a witness key is a string")
    name, key_id, public = split_key(text.strip(), "witness key", COSIGNATURE_V1_TYPE)
    return CosignerVerifier(name, key_id, public)


def parse_cosigner_secret(text: str) -> CosignerKey:
    """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>``."""
    return CosignerKey.parse_secret(text, "witness secret key")


@dataclass(frozen=True, slots=True)
class CosignatureCheck:
    """What a note holds for one witness key: a ``valid`` cosignature (with its timestamp), an
    ``invalid`` one (a line naming the key whose signature does not verify over this note's
    text), or none (``absent``)."""

    witness: CosignerVerifier
    status: Literal["valid", "invalid", "absent"]
    timestamp: int | None = None


def check_cosignatures(
    note: str | bytes, witnesses: Sequence[CosignerVerifier]
) -> list[CosignatureCheck]:
    """The cosignature status of each witness key on the signed note ``note`` (lines by other
    keys are ignored). The note's syntax must hold (`CheckpointFormatError` otherwise); the
    log's own signature is for `open_checkpoint` to check."""
    text, signatures = parse_note(note)
    checks: list[CosignatureCheck] = []
    for witness in witnesses:
        lines = [s for s in signatures if witness.matches(s)]
        if not lines:
            checks.append(CosignatureCheck(witness, "absent"))
            continue
        stamps = [witness.verify(text, s) for s in lines]
        valid = [stamp for stamp in stamps if stamp is not None]
        if len(valid) != len(stamps):
            checks.append(CosignatureCheck(witness, "invalid"))
        else:
            checks.append(CosignatureCheck(witness, "valid", max(valid)))
    return checks
