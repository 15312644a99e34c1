"""Checking many inclusion proofs against one root, each hash computed once.

An audit bundle carries one inclusion proof per event, all against the same signed root. Checked
one by one (`ledger.merkle.verify_inclusion`), each costs a hash per tree level, although the
paths of neighbouring leaves meet a few levels up and are the same from there to the root. Here
the walk of RFC 9162 §2.1.3.2 remembers, for every node it passed on a proof that held, the hash
it computed there and the rest of that proof's path. A later proof that reaches the same node
with the same hash and the same remaining path would repeat exactly the computation that already
ended at the root, so it holds without hashing further. The answer is always the one
`verify_inclusion` gives (tests compare both on valid and tampered proofs); leaves checked in
index order meet the nodes of the previous path, which is where the saving is."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from hashlib import sha256
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple

import orjson

from ledger._errors import InvalidEventError
from ledger._format import (
    GENESIS_HASH,
    LEAF_HEAD,
    LEAF_MAGIC,
    encode_attachment_digests,
    leaf_tail,
)
from ledger._proofs import INCLUSION_FORMAT

__all__ = ["CheckedLines", "InclusionChecker", "check_event_lines", "event_hashes"]

_HASH_SIZE = 32
_PROOF_MEMBERS = frozenset(("format", "leaf_index", "tree_size", "leaf_hash", "hashes"))
_PROOF_FIELDS = itemgetter("format", "leaf_index", "tree_size", "leaf_hash", "hashes")
_REMEMBERED = 4096
"""Nodes remembered at most (then forgotten all at once): bounded memory on any input. Leaves in
index order only ever meet the previous path's nodes (a few dozen)."""


class InclusionChecker:
    """`check(leaf_hash, index, path)` is `verify_inclusion(leaf_hash, index, tree_size, path,
    root)`, remembering the nodes of the proofs that held."""

    def __init__(self, tree_size: int, root: bytes) -> None:
        self.tree_size = tree_size
        self.root = root
        # (node index at its level, right shifts so far) -> (hash, the proof's path as its hashes
        # concatenated, the offset in it of the next hash): the walk's state after a step.
        self._seen_raw: dict[tuple[int, int], tuple[bytes, bytes, int]] = {}

    def check(self, leaf_hash: bytes, index: int, path: Sequence[bytes]) -> bool:
        """Whether `path` shows `leaf_hash` at `index` under the root. Never raises."""
        size, root = self.tree_size, self.root
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            return False
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != _HASH_SIZE:
            return False
        if not isinstance(root, bytes) or len(root) != _HASH_SIZE:
            return False
        try:
            steps = tuple(path)
        except TypeError:
            return False
        # Exact 32-byte `bytes` are recognized without a Python-level loop; anything else gets
        # the element-wise test `verify_inclusion` makes.
        exact = set(map(type, steps)) <= {bytes} and set(map(len, steps)) <= {_HASH_SIZE}
        if not exact and not all(isinstance(p, bytes) and len(p) == _HASH_SIZE for p in steps):
            return False
        return self._walk_bytes(leaf_hash, index, b"".join(steps))

    def check_hex(self, leaf_hash: bytes, index: int, path: list[str]) -> bool:
        """`check` of a path given as lowercase hex strings of 64 characters each, as an event
        line holds it (anything else is False). Never raises."""
        size = self.tree_size
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            return False
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != _HASH_SIZE:
            return False
        if not isinstance(self.root, bytes) or len(self.root) != _HASH_SIZE:
            return False
        raw = _hex_hashes(path) if type(path) is list else None
        return raw is not None and self._walk_bytes(leaf_hash, index, raw)

    def check_documents(
        self, leaf_hashes: Sequence[bytes], indexes: Sequence[int], documents: Sequence[Any]
    ) -> bool:
        """Whether every `check_document(leaf_hashes[i], indexes[i], documents[i])` holds, for
        many proofs at once: each member checked over all the documents together, every path's
        hex decoded in one call. Never raises."""
        size = self.tree_size
        if not all(type(d) is dict and d.keys() == _PROOF_MEMBERS for d in documents):
            return False
        if not len(leaf_hashes) == len(indexes) == len(documents):
            return False
        if not documents:
            return True
        formats, found, sizes, leaves, paths = zip(*map(_PROOF_FIELDS, documents), strict=True)
        if set(formats) != {INCLUSION_FORMAT} or set(map(type, paths)) != {list}:
            return False
        if set(map(type, found)) != {int} or found != tuple(indexes):
            return False
        if set(map(type, sizes)) != {int} or set(sizes) != {size}:
            return False
        if set(map(type, leaf_hashes)) != {bytes} or set(map(len, leaf_hashes)) != {_HASH_SIZE}:
            return False
        if list(leaves) != [h.hex() for h in leaf_hashes]:
            return False
        if not isinstance(self.root, bytes) or len(self.root) != _HASH_SIZE:
            return False
        raw = _hex_hashes(list(chain.from_iterable(paths)))
        if raw is None:
            return False
        walk, offset = self._walk_bytes, 0
        for leaf, index, path in zip(leaf_hashes, found, paths, strict=True):
            end = offset + _HASH_SIZE * len(path)
            if not 0 <= index < size or not walk(leaf, index, raw[offset:end]):
                return False
            offset = end
        return True

    def _walk_bytes(self, leaf_hash: bytes, index: int, raw: bytes) -> bool:
        """The walk of RFC 9162 §2.1.3.2 over a path given as its hashes concatenated: the
        remaining path is compared as one byte string, and the nodes are remembered as the walk
        goes (all of them are forgotten when the proof fails: it is rare, and then the bundle is
        read again)."""
        seen = self._seen_raw
        if len(seen) > _REMEMBERED:
            seen.clear()
        fn, sn, shifts, r = index, self.tree_size - 1, 0, leaf_hash
        end = len(raw)
        for offset in range(0, end, _HASH_SIZE):
            node = (fn, shifts)
            known = seen.get(node)
            if known is not None and known[0] == r and known[1][known[2] :] == raw[offset:]:
                return True
            seen[node] = (r, raw, offset)
            if sn == 0:
                seen.clear()
                return False
            p = raw[offset : offset + _HASH_SIZE]
            if fn & 1 or fn == sn:
                r = sha256(b"\x01" + p + r).digest()
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
                    shifts += 1
            else:
                r = sha256(b"\x01" + r + p).digest()
            fn >>= 1
            sn >>= 1
            shifts += 1
        if sn != 0 or r != self.root:
            seen.clear()
            return False
        seen[(fn, shifts)] = (r, raw, end)
        return True

    def check_document(self, leaf_hash: bytes, index: int, document: object) -> bool:
        """Whether `document` (a parsed `ledger-inclusion-proof/v1` document, as an event line
        holds it) is exactly a proof of `leaf_hash` at `index` in this tree — its members and
        no others, the format, the leaf index, the tree size, the leaf hash in lowercase hex —
        whose path leads to the root (`check_hex`). Never raises; False says nothing of why
        (`InclusionProof.from_document` and `check` do)."""
        if type(document) is not dict or document.keys() != _PROOF_MEMBERS:
            return False
        leaf_index, tree_size = document["leaf_index"], document["tree_size"]
        return (
            document["format"] == INCLUSION_FORMAT
            and type(leaf_index) is int
            and leaf_index == index
            and type(tree_size) is int
            and tree_size == self.tree_size
            and document["leaf_hash"] == leaf_hash.hex()
            and self.check_hex(leaf_hash, index, document["hashes"])
        )


def event_hashes(
    positions: Sequence[int],
    event_ids: Sequence[bytes],
    recorded_at_us: Sequence[int],
    stream_versions: Sequence[int],
    payload_digests: Sequence[bytes],
    prev_hashes: Sequence[bytes],
    types: Sequence[bytes],
    stream_ids: Sequence[bytes],
    attachments: Sequence[Mapping[str, bytes]],
) -> tuple[list[bytes], list[bytes]]:
    """The leaf hashes and chain hashes of events given column-wise (`Envelope.leaf_data` of
    each, docs/ledger.md "Byte formats"): the same bytes `leaf_data`, `leaf_hash` and
    `chain_hash` make, for many events in one call. Raises `struct.error`, `OverflowError` or
    `InvalidEventError` when a value does not fit its field."""
    pack, tail = LEAF_HEAD.pack, leaf_tail
    encoded = [encode_attachment_digests(a) if a else b"" for a in attachments]
    data = [
        pack(LEAF_MAGIC, position, event_id, at, version, digest, prev, len(kind))
        + tail(kind, stream, attached)
        for position, event_id, at, version, digest, prev, kind, stream, attached in zip(
            positions,
            event_ids,
            recorded_at_us,
            stream_versions,
            payload_digests,
            prev_hashes,
            types,
            stream_ids,
            encoded,
            strict=True,
        )
    ]
    leaves = [sha256(b"\x00" + d).digest() for d in data]
    chains = [sha256(prev + d).digest() for prev, d in zip(prev_hashes, data, strict=True)]
    return leaves, chains


_UUIDS = re.compile(r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})*")
_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_U64 = 2**64 - 1
_MIN_I64, _MAX_I64 = -(2**63), 2**63 - 1
_CHECKERS: dict[tuple[int, bytes], InclusionChecker] = {}
"""This process's checker of the last tree seen: the batches of one file, sent to a worker
process one after another, share its remembered nodes."""


def _hex_hashes(texts: Sequence[Any]) -> bytes | None:
    """The hashes that lowercase hex strings of 64 characters each spell, concatenated, in one
    decode (b"" for none); None when any item is something else."""
    if texts and (set(map(type, texts)) != {str} or set(map(len, texts)) != {2 * _HASH_SIZE}):
        return None
    joined = "".join(texts)
    try:
        raw = bytes.fromhex(joined)
    except ValueError:
        return None
    # Lowercase hex is exactly what decodes and prints back unchanged.
    return raw if raw.hex() == joined else None


def _ints(column: tuple[Any, ...], low: int, high: int) -> bool:
    # `type(...) is int` leaves booleans out, as the line-by-line reader does.
    return set(map(type, column)) == {int} and low <= min(column) and max(column) <= high


def _texts(column: tuple[Any, ...]) -> bool:
    return set(map(type, column)) == {str}


def _hashes(column: tuple[Any, ...]) -> list[bytes] | None:
    """32-byte hashes from lowercase hex strings of 64 characters, in one decode."""
    raw = _hex_hashes(column) if column else None
    if raw is None:
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


class CheckedLines(NamedTuple):
    """What `check_event_lines` read from lines that pass every check: columns of their
    events, and the position and chain hash of the last one."""

    positions: list[int]
    event_ids: list[str]
    types: list[str]
    stream_ids: list[str]
    stream_versions: list[int]
    recorded_at_us: list[int]
    payloads: list[bytes]
    last: tuple[int, bytes]


def check_event_lines(
    block: bytes,
    previous: tuple[int, bytes] | None,
    tree_size: int,
    root: bytes,
    members: tuple[str, ...],
) -> CheckedLines | None:
    """Whether every line of `block` (event lines of an audit bundle, docs/bundles.md, joined
    by newlines) passes every check of a bundled event line, all lines at once: JSON objects
    with exactly `members` (in the order `position, event_id, type, stream_id, stream_version,
    recorded_at_us, payload, attachments, prev_hash, chain_hash, leaf_hash, proof`) of their
    types, lowercase hex hashes, canonical UUIDs, the leaf and chain hashes recomputed from the
    line's bytes, increasing positions with the chain linked where two are consecutive (from
    `previous`, the position and chain hash of the line before the block; position 0 holds the
    genesis hash) and each inclusion proof leading to `root` at `tree_size`.

    Returns what the lines hold (`CheckedLines`) when every line passes, else None, which says
    nothing of why: the line-by-line reader names the problems. A plain function of bytes
    and numbers, so a worker process can run it (it imports nothing beyond the ledger's core).
    Never raises on any input."""
    lines = block.split(b"\n")
    try:
        docs = list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        return None
    wanted = frozenset(members)
    if len(wanted) != 12 or not all(type(d) is dict and d.keys() == wanted for d in docs):
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
    ) = zip(*map(itemgetter(*members), docs), strict=True)
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
        true_leaves, true_chains = event_hashes(
            positions,
            [ids[i : i + 16] for i in range(0, len(ids), 16)],
            recorded,
            versions,
            [sha256(p).digest() for p in payload_bytes],
            prev_hashes,
            [t.encode("utf-8") for t in types],
            [s.encode("utf-8") for s in stream_ids],
            attachments,
        )
    except (UnicodeEncodeError, InvalidEventError, OverflowError, ValueError):
        return None  # struct.error is a ValueError
    if true_leaves != leaf_hashes or true_chains != chain_hashes:
        return None
    last, link = (-1, b"") if previous is None else previous
    for position, prev, chained in zip(positions, prev_hashes, chain_hashes, strict=True):
        if position <= last:
            return None
        if position == 0:
            if prev != GENESIS_HASH:
                return None
        elif position == last + 1 and prev != link:
            return None
        last, link = position, chained
    checker = _CHECKERS.get((tree_size, root))
    if checker is None:
        _CHECKERS.clear()
        checker = _CHECKERS[(tree_size, root)] = InclusionChecker(tree_size, root)
    if not checker.check_documents(leaf_hashes, positions, proofs):
        return None
    return CheckedLines(
        list(positions),
        list(event_ids),
        list(types),
        list(stream_ids),
        list(versions),
        list(recorded),
        payload_bytes,
        (last, link),
    )
