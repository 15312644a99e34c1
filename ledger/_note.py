"""C2SP signed notes (https://c2sp.org/signed-note), Ed25519 only.

A note is its text (ending in a newline), a blank line, then one or more signature lines
``— <key name> <base64(4-byte big-endian key ID || signature)>`` (U+2014 EM DASH, a space). The note
is UTF-8 without control characters other than newline; the text is separated from the signatures
by the last blank line. Signatures by unknown keys are ignored; a signature by the expected key that
fails to verify rejects the whole note.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from ledger._errors import CheckpointFormatError, SignatureError, UnknownKeyError
from ledger._keys import SigningKey, VerifierKey, decode_b64, valid_key_name, valid_utf8

__all__ = ["NoteSignature", "open_note", "parse_note", "sign_note", "signature_line"]

SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: int
    signature: bytes


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def _check_characters(text: str, what: str) -> None:
    bad = _CONTROL.search(text)
    if bad:
        raise CheckpointFormatError(
            f"{what} holds control character {bad.group()!r} at offset {bad.start()}"
        )
    if not valid_utf8(text):
        raise CheckpointFormatError(f"{what} is not valid UTF-8 (it holds a lone surrogate)")


def sign_note(text: str, key: SigningKey) -> str:
    """The signed note of ``text`` (which must end in a newline) with one signature by ``key``."""
    if not text.endswith("\n"):
        raise CheckpointFormatError("note text must end with a newline")
    _check_characters(text, "note text")
    return f"{text}\n" + signature_line(
        NoteSignature(key.name, key.key_id, key.sign(text.encode()))
    )


def signature_line(signature: NoteSignature) -> str:
    """The note signature line (with its final newline) of ``signature``."""
    raw = signature.key_id.to_bytes(4, "big") + signature.signature
    return f"{SIGNATURE_PREFIX}{signature.name} {base64.b64encode(raw).decode('ascii')}\n"


def parse_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and signature lines, checking the syntax only."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointFormatError(
                f"note is not valid UTF-8 (byte offset {exc.start})"
            ) from None
    if not isinstance(note, str):
        raise CheckpointFormatError("a note is text (str or UTF-8 bytes)")
    _check_characters(note, "note")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointFormatError("note has no blank line separating its text from signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise CheckpointFormatError("note has no signature lines after its blank line")
    if not block.endswith("\n"):
        raise CheckpointFormatError("note's last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointFormatError(f"note has more than {MAX_SIGNATURES} signature lines")
    signatures: list[NoteSignature] = []
    for number, line in enumerate(lines, start=1):
        where = f"signature line {number}"
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointFormatError(f"{where} does not start with em dash (U+2014), space")
        name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not sep or not valid_key_name(name):
            raise CheckpointFormatError(f"{where} is not '— <key name> <base64 signature>'")
        raw = decode_b64(encoded)
        if raw is None or len(raw) < 5:
            raise CheckpointFormatError(
                f"{where} ({name}): signature is not canonical base64 of a key ID and signature"
            )
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, signatures


def open_note(note: str | bytes, verifier: VerifierKey) -> str:
    """The text of ``note`` once every signature by ``verifier`` verifies (and there is one)."""
    text, signatures = parse_note(note)
    message = text.encode("utf-8")
    ours = [s for s in signatures if s.name == verifier.name and s.key_id == verifier.key_id]
    if not ours:
        present = ", ".join(f"{s.name}+{s.key_id:08x}" for s in signatures)
        raise UnknownKeyError(
            f"note is not signed by key {verifier.name}+{verifier.key_id:08x} "
            f"(it is signed by: {present})"
        )
    for s in ours:
        if not verifier.verify(message, s.signature):
            raise SignatureError(
                f"signature by key {verifier.name}+{verifier.key_id:08x} does not verify"
            )
    return text
