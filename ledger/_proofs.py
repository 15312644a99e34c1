"""Proof documents: what `ledger proof ID` prints and audit bundles carry, and their offline check.

JSON, hashes as lowercase hex (64 characters)::

    {"format": "ledger-inclusion-proof/v1", "leaf_index": 5, "tree_size": 8,
     "leaf_hash": "<hex>", "hashes": ["<hex>", ...]}
    {"format": "ledger-consistency-proof/v1", "old_size": 6, "new_size": 8, "hashes": [...]}

``hashes`` is the RFC 6962 path, ordered from the leaf (or old tree) upwards. A document is checked
against signed checkpoint note(s) and the log's verifier key only: no database, no network.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger._checkpoint import open_checkpoint
from ledger._errors import (
    ConsistencyProofError,
    InclusionProofError,
    ProofFormatError,
    ProofSizeError,
)
from ledger._keys import VerifierKey
from ledger.merkle import verify_consistency, verify_inclusion

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "verify_consistency_document",
    "verify_inclusion_document",
]

INCLUSION_FORMAT = "ledger-inclusion-proof/v1"
CONSISTENCY_FORMAT = "ledger-consistency-proof/v1"
_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_SIZE = 2**64 - 1
# A path has about one element per tree level (at most 65 for 2^64 leaves): a sanity bound.
_MAX_PATH = 128


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for key, value in pairs:
        if key in members:
            raise ProofFormatError(f"/{key}: member appears twice")
        members[key] = value
    return members


def _parse(text: str | bytes) -> object:
    try:
        return json.loads(text, object_pairs_hook=_unique_members)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProofFormatError(f"proof document is not JSON: {exc}") from None


def _members(document: object, expected_format: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ProofFormatError("/: a proof document is a JSON object")
    if document.get("format") != expected_format:
        raise ProofFormatError(
            f"/format: expected {expected_format!r}, got {document.get('format')!r}"
        )
    unknown = sorted(set(document) - {"format", *keys})
    if unknown:
        raise ProofFormatError(f"/{unknown[0]}: unknown member of a {expected_format} document")
    for key in keys:
        if key not in document:
            raise ProofFormatError(f"/{key}: missing")
    return document


def _check_size(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SIZE:
        raise ProofFormatError(f"/{key}: expected an integer in 0..2^64-1, got {value!r}")
    return value


def _check_hash(value: object, pointer: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ProofFormatError(f"{pointer}: expected a 32-byte hash, got {value!r}")
    return value


def _check_hashes(value: object) -> tuple[bytes, ...]:
    if isinstance(value, (bytes, str)) or not isinstance(value, (tuple, list)):
        raise ProofFormatError(f"/hashes: expected a sequence of hashes, got {value!r}")
    if len(value) > _MAX_PATH:
        raise ProofFormatError(f"/hashes: {len(value)} hashes; a path has at most {_MAX_PATH}")
    if set(map(type, value)) <= {bytes} and set(map(len, value)) <= {32}:
        return tuple(value)  # every one a 32-byte hash (checked without a Python-level loop)
    return tuple(_check_hash(h, f"/hashes/{i}") for i, h in enumerate(value))


def _size(document: Mapping[str, Any], key: str) -> int:
    return _check_size(key, document[key])


def _hash(value: object, pointer: str) -> bytes:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise ProofFormatError(f"{pointer}: expected 64 lowercase hex characters, got {value!r}")
    return bytes.fromhex(value)


def _hashes(document: Mapping[str, Any]) -> tuple[bytes, ...]:
    value = document["hashes"]
    if not isinstance(value, list):
        raise ProofFormatError(f"/hashes: expected a list of hex hashes, got {value!r}")
    if len(value) > _MAX_PATH:
        raise ProofFormatError(f"/hashes: {len(value)} hashes; a path has at most {_MAX_PATH}")
    if set(map(type, value)) <= {str}:
        # The common case in one decode (bundles hold one path per event): lowercase hex is
        # exactly what decodes and prints back unchanged. Any failure is named element by
        # element below.
        joined = "".join(value)
        try:
            raw = bytes.fromhex(joined)
        except ValueError:
            raw = b""
        if len(raw) == 32 * len(value) and raw.hex() == joined:
            hashes: tuple[bytes, ...] = struct.unpack("32s" * len(value), raw)
            return hashes
    return tuple(_hash(h, f"/hashes/{i}") for i, h in enumerate(value))


def _dump(obj: Mapping[str, Any], indent: int | None) -> str:
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(obj, indent=indent, sort_keys=True, separators=separators)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """That the leaf with ``leaf_hash`` is at ``leaf_index`` in the tree of ``tree_size`` leaves."""

    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_size("leaf_index", self.leaf_index)
        _check_size("tree_size", self.tree_size)
        if self.leaf_index >= self.tree_size:
            raise ProofFormatError(
                f"/leaf_index: {self.leaf_index} is outside a tree of size {self.tree_size}"
            )
        _check_hash(self.leaf_hash, "/leaf_hash")
        object.__setattr__(self, "hashes", _check_hashes(self.hashes))

    def document(self) -> dict[str, Any]:
        """The JSON document as a dict (what `to_json` writes)."""
        return {
            "format": INCLUSION_FORMAT,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "hashes": [h.hex() for h in self.hashes],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The JSON document (keys sorted; compact unless ``indent``)."""
        return _dump(self.document(), indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> InclusionProof:
        """Parse a document; `ProofFormatError` names the offending member by JSON pointer."""
        return cls.from_document(_parse(text))

    @classmethod
    def from_document(cls, document: object) -> InclusionProof:
        """The proof of an already parsed document (e.g. a member of a larger JSON line), checked
        like `from_json` checks it."""
        found = _members(
            document, INCLUSION_FORMAT, ("leaf_index", "tree_size", "leaf_hash", "hashes")
        )
        return cls(
            _size(found, "leaf_index"),
            _size(found, "tree_size"),
            _hash(found["leaf_hash"], "/leaf_hash"),
            _hashes(found),
        )


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """That the tree of ``old_size`` leaves is a prefix of the tree of ``new_size`` leaves."""

    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_size("old_size", self.old_size)
        _check_size("new_size", self.new_size)
        if self.old_size > self.new_size:
            raise ProofFormatError(
                f"/old_size: {self.old_size} is larger than new_size {self.new_size}"
            )
        object.__setattr__(self, "hashes", _check_hashes(self.hashes))

    def to_json(self, *, indent: int | None = None) -> str:
        """The JSON document (keys sorted; compact unless ``indent``)."""
        return _dump(
            {
                "format": CONSISTENCY_FORMAT,
                "old_size": self.old_size,
                "new_size": self.new_size,
                "hashes": [h.hex() for h in self.hashes],
            },
            indent,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ConsistencyProof:
        """Parse a document; `ProofFormatError` names the offending member by JSON pointer."""
        document = _members(_parse(text), CONSISTENCY_FORMAT, ("old_size", "new_size", "hashes"))
        return cls(_size(document, "old_size"), _size(document, "new_size"), _hashes(document))


def verify_inclusion_document(
    proof: InclusionProof,
    checkpoint_note: str | bytes,
    verifier_key: VerifierKey | str,
    *,
    origin: str | None = None,
) -> None:
    """Check ``proof`` against a signed checkpoint, offline, with only the log's verifier key.

    Raises a `CheckpointError` when the checkpoint does not open (format, key, signature,
    origin), `ProofSizeError` when the proof is for another tree size, and `InclusionProofError`
    when the path does not lead from the leaf hash to the signed root.
    """
    checkpoint = open_checkpoint(checkpoint_note, verifier_key, origin=origin)
    if proof.tree_size != checkpoint.size:
        raise ProofSizeError(
            f"the proof is for tree size {proof.tree_size}; the checkpoint signs size "
            f"{checkpoint.size}"
        )
    if not verify_inclusion(
        proof.leaf_hash, proof.leaf_index, proof.tree_size, proof.hashes, checkpoint.root
    ):
        raise InclusionProofError(
            f"the inclusion path of leaf {proof.leaf_index} ({proof.leaf_hash.hex()}) does not "
            f"lead to the root {checkpoint.root.hex()} signed at tree size {checkpoint.size}"
        )


def verify_consistency_document(
    proof: ConsistencyProof,
    old_checkpoint_note: str | bytes,
    new_checkpoint_note: str | bytes,
    verifier_key: VerifierKey | str,
    *,
    origin: str | None = None,
) -> None:
    """Check that two signed checkpoints of one log are consistent (the newer extends the older).

    Raises a `CheckpointError` when either checkpoint does not open, `ProofSizeError` when the
    proof's sizes are not the checkpoints', and `ConsistencyProofError` when the path does not
    connect the two roots.
    """
    old = open_checkpoint(old_checkpoint_note, verifier_key, origin=origin)
    new = open_checkpoint(new_checkpoint_note, verifier_key, origin=origin)
    if (proof.old_size, proof.new_size) != (old.size, new.size):
        raise ProofSizeError(
            f"the proof is from tree size {proof.old_size} to {proof.new_size}; the checkpoints "
            f"sign sizes {old.size} and {new.size}"
        )
    if not verify_consistency(old.size, new.size, old.root, new.root, proof.hashes):
        raise ConsistencyProofError(
            f"the consistency path does not connect the root {old.root.hex()} at size {old.size} "
            f"to the root {new.root.hex()} at size {new.size}"
        )
