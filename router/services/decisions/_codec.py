"""The compact, lossless encoding of a decision's outcome (docs/decisions.md, "Encoding").

A trace is the filter outcome (per rule, the entries that failed it) plus the rank order of the
passing entries. Only the filter outcome carries information the rank does not: the rank order is
a pure function of (passing set, rank keys, catalog, tokens). So:

- the **filter outcome** is stored as one bitmap per rule (built-in rules first, then the
  policy's rules in normalized order), each `ceil(entries / 8)` bytes where bit `7 - i % 8` of
  byte `i // 8` (most significant first, the trace's own `failures` layout) is set when entry `i`
  failed the rule; the bitmaps are concatenated,
  zlib-compressed (level 9) and base64-encoded, in a content-addressed `OutcomeRecorded` event
  that every decision with the same outcome references by digest (measured smaller than one
  failed-rule mask per entry, see bench/bench_decision_record.py);
- the **rank order** is stored as the passing count plus the SHA-256 of the full ordered index
  list (`order_digest`); decoding rebuilds the order with `rank_order` (the evaluator's documented
  sort) and raises `RecordMismatchError` unless it hashes to the recorded digest;
- the **plan** (indices) and the selected entry are stored as they are.

`decode_decision` is the one reader of a `DecisionMade` payload: the decision service, replay
and the reports all take its `DecisionPayload`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ledger import canonical_json
from router.core import (
    BUILTIN_RULES,
    COST_PER_RUN,
    Catalog,
    InputError,
    Policy,
    RequestFeatures,
    Tokens,
    Trace,
    cost_of,
)
from router.services.decisions._errors import RecordMismatchError

__all__ = [
    "MASK_ENCODING",
    "OUTCOME_SCHEMA",
    "DecisionPayload",
    "RankOrder",
    "decode_decision",
    "decode_failures",
    "encode_outcome",
    "order_digest",
    "outcome_digest",
    "rank_order",
    "rebuild_trace",
]

OUTCOME_SCHEMA = "unhardcoded.outcome/1"
"""Schema of the `OutcomeRecorded` payload."""

MASK_ENCODING = "rule-bitmaps-msb+zlib/1"
"""Per rule a bitmap of ceil(entries/8) bytes (entry i = bit 7 - i % 8 of byte i // 8, MSB
first); concatenated, zlib, base64."""


@dataclass(frozen=True, slots=True)
class DecisionPayload:
    """A `DecisionMade` payload, decoded (docs/decisions.md, "DecisionMade")."""

    decision_id: str
    tenant: str
    preview: bool
    request_digest: str | None
    features: RequestFeatures | None
    fingerprint: str
    policy_digest: str
    catalog_version: str
    evaluator_version: str
    tokens: Tokens | None
    outcome: str
    passing: int
    order_sha256: str
    selected: tuple[int, str] | None
    plan: tuple[int, ...]
    idempotency_key_sha256: str | None = None
    """Absent from decisions made without an Idempotency-Key (and from every older one)."""


def decode_decision(payload: bytes | Mapping[str, Any]) -> DecisionPayload:
    """Decode a `DecisionMade` payload (its canonical JSON bytes or the parsed object).

    The ledger accepts any payload, so nothing here trusts it: a payload that is not a
    well-formed decision raises `RecordMismatchError` saying what is wrong, never a bare
    KeyError."""
    try:
        p = json.loads(payload) if isinstance(payload, bytes | bytearray) else payload
        features = p["features"]
        tokens = p["tokens"]
        selected = p["selected"]
        return DecisionPayload(
            decision_id=str(p["decision_id"]),
            tenant=p["tenant"],
            preview=p["preview"],
            request_digest=p["request_digest"],
            features=None if features is None else RequestFeatures(**features),
            fingerprint=p["policy"]["fingerprint"],
            policy_digest=p["policy"]["digest"],
            catalog_version=p["catalog_version"],
            evaluator_version=str(p["evaluator_version"]),
            tokens=None
            if tokens is None
            else Tokens(tokens["in"], tokens["out"], tokens.get("cached", 0)),
            outcome=p["filter"]["outcome"],
            passing=p["filter"]["passing"],
            order_sha256=p["rank"]["order_sha256"],
            selected=None if selected is None else (selected["index"], selected["id"]),
            plan=tuple(p["plan"]),
            idempotency_key_sha256=p.get("idempotency_key_sha256"),
        )
    except (KeyError, TypeError, ValueError, AttributeError, InputError) as exc:
        raise RecordMismatchError(
            f"not a well-formed decision ({type(exc).__name__}: {exc})"
        ) from None


def encode_outcome(trace: Trace) -> dict[str, Any]:
    """The `OutcomeRecorded` payload of a trace's filter outcome (see the module docstring)."""
    entries = len(trace.catalog.entries)
    raw = b"".join(trace.failures)
    return {
        "schema": OUTCOME_SCHEMA,
        "catalog_version": trace.catalog.version,
        "entries": entries,
        "rules": list(trace.rule_ids),
        "encoding": MASK_ENCODING,
        "masks": base64.b64encode(zlib.compress(raw, 9)).decode("ascii"),
    }


def outcome_digest(payload: Mapping[str, Any]) -> str:
    """The content address of an outcome: SHA-256 hex of its RFC 8785 bytes."""
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def decode_failures(payload: Mapping[str, Any]) -> tuple[bytes, ...]:
    """Per rule (in `payload["rules"]` order): its failure bitmap, as `Trace.failures` holds it."""
    if payload.get("schema") != OUTCOME_SCHEMA or payload.get("encoding") != MASK_ENCODING:
        raise RecordMismatchError(
            f"unknown outcome schema {payload.get('schema')!r} / encoding "
            f"{payload.get('encoding')!r}"
        )
    rules = len(payload["rules"])
    entries = int(payload["entries"])
    width = (entries + 7) // 8
    try:
        raw = zlib.decompress(base64.b64decode(payload["masks"], validate=True))
    except (ValueError, zlib.error) as exc:
        raise RecordMismatchError(f"outcome masks do not decode: {exc}") from None
    if len(raw) != rules * width:
        raise RecordMismatchError(
            f"outcome masks hold {len(raw)} bytes, expected {rules} rules × {width}"
        )
    bitmaps = tuple(raw[row * width : (row + 1) * width] for row in range(rules))
    spare = (-entries) % 8
    if spare and any(bitmap[-1] & ((1 << spare) - 1) for bitmap in bitmaps):
        raise RecordMismatchError("outcome masks set bits past the last entry")
    return bitmaps


def rank_order(
    policy: Policy, catalog: Catalog, tokens: Tokens | None, passing: Sequence[int]
) -> tuple[int, ...]:
    """The evaluator's rank of the passing entries: by each rank key in turn (missing values
    last; `asc` smallest first, `desc` largest first), ties broken by entry index (= id order)."""

    def key(index: int) -> tuple[Any, ...]:
        entry = catalog.entries[index]
        parts: list[Any] = []
        for rank_key in policy.rank:
            if rank_key.attr == COST_PER_RUN:
                if tokens is None:
                    raise RecordMismatchError("the rank uses cost_per_run but records no tokens")
                value: float | None = cost_of(entry, tokens)
            else:
                raw = entry.attributes.get(rank_key.attr)
                number = isinstance(raw, int | float) and not isinstance(raw, bool)
                value = float(raw) if number else None  # type: ignore[arg-type]
            if value is None:
                parts.extend((True, 0.0))
            else:
                parts.extend((False, value if rank_key.direction == "asc" else -value))
        parts.append(index)
        return tuple(parts)

    return tuple(sorted(passing, key=key))


def order_digest(indices: Sequence[int]) -> str:
    """SHA-256 hex over the indices as consecutive big-endian unsigned 32-bit integers."""
    return hashlib.sha256(struct.pack(f">{len(indices)}I", *indices)).hexdigest()


RankOrder = Callable[[Policy, Catalog, Tokens | None, Sequence[int]], tuple[int, ...]]
"""`rank_order`'s signature: what `rebuild_trace` ranks the passing entries with."""


def rebuild_trace(
    decision: DecisionPayload,
    outcome: Mapping[str, Any],
    policy: Policy,
    catalog: Catalog,
    rank: RankOrder = rank_order,
) -> Trace:
    """The `Trace` a decoded `DecisionMade` payload and its `OutcomeRecorded` payload describe,
    checked against every digest they carry; `RecordMismatchError` names the first
    inconsistency.

    `rank` rebuilds the order (default `rank_order`); a caller rebuilding many decisions of a
    catalog may give one that reuses its work across them (the order digest checks it all the
    same)."""

    def mismatch(what: str) -> RecordMismatchError:
        return RecordMismatchError(f"decision {decision.decision_id}: {what}")

    if decision.policy_digest != policy.digest:
        raise mismatch("the recorded policy digest is not the given policy's")
    if decision.catalog_version != catalog.version:
        raise mismatch("the recorded catalog version is not the given catalog's")
    if outcome_digest(outcome) != decision.outcome:
        raise mismatch("the outcome does not hash to the digest the decision records")
    rule_ids = (*BUILTIN_RULES, *(rule.id for rule in policy.rules))
    if tuple(outcome["rules"]) != rule_ids or outcome["catalog_version"] != catalog.version:
        raise mismatch("the outcome names other rules or another catalog version")
    if int(outcome["entries"]) != len(catalog.entries):
        raise mismatch("the outcome covers another number of entries than the catalog has")
    failures = decode_failures(outcome)
    entries = len(catalog.entries)
    removed = np.zeros(entries, dtype=np.bool_)
    for bitmap in failures:
        removed |= np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=entries).astype(
            np.bool_
        )
    passing = np.flatnonzero(~removed).tolist()
    if len(passing) != decision.passing:
        raise mismatch(
            f"{len(passing)} entries pass the outcome, the decision records {decision.passing}"
        )
    ranked = rank(policy, catalog, decision.tokens, passing)
    if order_digest(ranked) != decision.order_sha256:
        raise mismatch("the rebuilt rank order does not match its recorded digest")
    if decision.plan != ranked[: policy.max_attempts]:
        raise mismatch("the recorded plan is not the head of the rebuilt rank order")
    return Trace(
        evaluator_version=decision.evaluator_version,
        policy=policy,
        catalog=catalog,
        features=decision.features,
        tokens=decision.tokens,
        rule_ids=rule_ids,
        failures=failures,
        ranked=ranked,
        plan=decision.plan,
    )
