"""Signed checkpoints: C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint) in notes.

The body is ``<origin>\\n<tree size, decimal>\\n<base64 root hash>\\n`` followed by optional,
opaque, non-empty extension lines. This ledger signs with an Ed25519 key whose name is the origin
(the spec's SHOULD), and `open_checkpoint` holds a note to that unless told another origin.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from ledger._errors import CheckpointBodyError, CheckpointFormatError, OriginMismatchError
from ledger._keys import SigningKey, VerifierKey, decode_b64, parse_verifier_key
from ledger._note import open_note, sign_note

__all__ = ["Checkpoint", "open_checkpoint", "sign_checkpoint"]

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_MAX_SIZE = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's origin, its tree size and the RFC 6962 root hash at that size."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise CheckpointFormatError(f"origin {self.origin!r} is empty or spans lines")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointFormatError(f"tree size {self.size!r} is not an integer")
        if not 0 <= self.size <= _MAX_SIZE:
            raise CheckpointFormatError(f"tree size {self.size} is outside 0..2^64-1")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise CheckpointFormatError("root hash is not 32 bytes")
        for i, line in enumerate(self.extensions):
            if not isinstance(line, str) or not line or "\n" in line:
                raise CheckpointFormatError(f"extension line {i} is empty or spans lines")

    def body(self) -> str:
        """The checkpoint's note text, byte-for-byte what is signed."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text (unverified: `open_checkpoint` is the way in)."""
        if not text.endswith("\n"):
            raise CheckpointFormatError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointFormatError(
                f"checkpoint has {len(lines)} line(s); it needs origin, tree size and root hash"
            )
        for number, line in enumerate(lines, start=1):
            if not line:
                raise CheckpointFormatError(f"checkpoint line {number} is empty")
        origin, size_text, root_text = lines[:3]
        if not _DECIMAL.fullmatch(size_text):
            raise CheckpointFormatError(
                f"checkpoint line 2 (tree size) {size_text!r} is not a decimal number "
                "without leading zeroes"
            )
        root = decode_b64(root_text)
        if root is None or len(root) != 32:
            raise CheckpointFormatError(
                f"checkpoint line 3 (root hash) {root_text!r} is not the base64 of a 32-byte hash"
            )
        return cls(origin, int(size_text), root, tuple(lines[3:]))


def sign_checkpoint(checkpoint: Checkpoint, key: SigningKey) -> str:
    """The signed note of ``checkpoint``, signed by ``key`` (whose name must be the origin)."""
    if key.name != checkpoint.origin:
        raise OriginMismatchError(
            f"key {key.name!r} cannot sign a checkpoint of origin {checkpoint.origin!r}: "
            "this ledger names its key after its origin"
        )
    return sign_note(checkpoint.body(), key)


def open_checkpoint(
    note: str | bytes, verifier: VerifierKey | str, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint note with ``verifier`` and return the checkpoint.

    ``origin`` is the origin the caller expects; it defaults to the verifier's key name. Raises
    `CheckpointFormatError` (`CheckpointBodyError` when the signature verifies but the body is
    malformed), `VerifierKeyError`, `UnknownKeyError`, `SignatureError` or
    `OriginMismatchError` (all `CheckpointError`s).
    """
    key = parse_verifier_key(verifier) if isinstance(verifier, str) else verifier
    text = open_note(note, key)
    try:
        checkpoint = Checkpoint.parse_body(text)
    except CheckpointFormatError as exc:
        # A valid signature over a malformed body is the signer's bug or a key misused to sign
        # something else: either way not a checkpoint, and not a forged signature.
        raise CheckpointBodyError(
            f"the signature by key {key.name}+{key.key_id:08x} verifies, but the signed text is "
            f"not a checkpoint body: {exc}"
        ) from None
    expected = key.name if origin is None else origin
    if checkpoint.origin != expected:
        raise OriginMismatchError(
            f"checkpoint origin is {checkpoint.origin!r}, expected {expected!r}"
        )
    return checkpoint
