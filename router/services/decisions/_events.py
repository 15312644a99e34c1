"""The decision record's event types, their streams and their versioned payloads
(docs/decisions.md, "Events")."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from ledger import InvalidEventError, NewEvent, canonical_json
from router.core import (
    AllOf,
    Catalog,
    Expr,
    Is,
    Policy,
    RequestFeatures,
    Trace,
    extended_canonical_bytes,
    tokens_json,
)
from router.services.decisions._codec import encode_outcome, order_digest, outcome_digest

__all__ = [
    "ATTEMPT_FINISHED",
    "ATTEMPT_SCHEMA",
    "CATALOG_PUBLISHED",
    "CATALOG_SCHEMA",
    "DECISIONS_SEALED",
    "DECISION_MADE",
    "DECISION_SCHEMA",
    "OUTCOME_RECORDED",
    "POLICY_RECORDED",
    "POLICY_SCHEMA",
    "REQUEST_BODY",
    "SEAL_SCHEMA",
    "attempt_stream",
    "catalog_event",
    "catalog_stream",
    "decision_event",
    "has_no_log_rule",
    "outcome_event",
    "outcome_stream",
    "policy_event",
    "request_digest",
    "seal_event",
    "tenant_stream",
]

CATALOG_PUBLISHED = "CatalogPublished"
POLICY_RECORDED = "PolicyRecorded"
OUTCOME_RECORDED = "OutcomeRecorded"
DECISION_MADE = "DecisionMade"
ATTEMPT_FINISHED = "AttemptFinished"
DECISIONS_SEALED = "DecisionsSealed"

CATALOG_SCHEMA = "unhardcoded.catalog/1"
POLICY_SCHEMA = "unhardcoded.policy/1"
DECISION_SCHEMA = "unhardcoded.decision/1"
ATTEMPT_SCHEMA = "unhardcoded.attempt/1"
SEAL_SCHEMA = "unhardcoded.decisions-sealed/1"

REQUEST_BODY = "request_body"
"""Name of the erasable attachment holding a request body's canonical bytes."""


def catalog_stream(version: str) -> str:
    """`catalog/{version}`: one stream per catalog version, so "once per digest" is the stream's
    optimistic concurrency (expected version 0) and a lookup by version is one indexed read."""
    return f"catalog/{version}"


def outcome_stream(digest: str) -> str:
    """`outcome/{digest}`: one stream per distinct filter outcome."""
    return f"outcome/{digest}"


def tenant_stream(tenant: str) -> str:
    """`decisions/{tenant}`: the tenant's decision sequence. The ledger numbers a stream's events
    gaplessly (stream version) under its write lock, in the step that stamps their time, so the
    versions of this stream are the tenant's decisions in recorded order, with no hole: what a
    completeness proof stands on (docs/bundles.md, "Completeness")."""
    return f"decisions/{tenant}"


def attempt_stream(decision_id: uuid.UUID) -> str:
    """`attempts/{decision id}`: a decision's upstream attempts, in order (version = attempt)."""
    return f"attempts/{decision_id}"


def request_digest(body: Mapping[str, Any]) -> tuple[str, bytes]:
    """The request's canonical bytes and their SHA-256 hex: RFC 8785, extended to every valid
    JSON body (`router.core.extended_canonical_bytes`: integers beyond ±(2⁵³ − 1), numbers
    beyond a double, lone surrogates), so an I-JSON body has the digest it always had."""
    try:
        raw = canonical_json(body)
    except InvalidEventError:
        raw = extended_canonical_bytes(body)
    return hashlib.sha256(raw).hexdigest(), raw


def _requires_no_log(expr: Expr) -> bool:
    if isinstance(expr, Is):
        return expr.attr == "no_log"
    if isinstance(expr, AllOf):
        return any(_requires_no_log(operand) for operand in expr.operands)
    return False


def has_no_log_rule(policy: Policy) -> bool:
    """Whether a rule requires `no_log` true: its condition is `["is","no_log"]`, or an `all`
    (at any depth of nested `all`s) with `["is","no_log"]` among its operands. Such a rule makes
    `no_log` necessary for every entry that passes; under `any` or `not` it would not."""
    return any(_requires_no_log(rule.when) for rule in policy.rules)


def catalog_event(catalog: Catalog) -> NewEvent:
    """`CatalogPublished`: the whole catalog document, once per version."""
    return NewEvent(
        CATALOG_PUBLISHED,
        catalog_stream(catalog.version),
        {
            "schema": CATALOG_SCHEMA,
            "version": catalog.version,
            "name": catalog.name,
            "entries": len(catalog.entries),
            "catalog": catalog.to_json(),
        },
    )


def policy_event(policy: Policy) -> NewEvent:
    """`PolicyRecorded`: the normalized policy, first event of its fingerprint's stream."""
    return NewEvent(
        POLICY_RECORDED,
        policy.fingerprint,
        {
            "schema": POLICY_SCHEMA,
            "fingerprint": policy.fingerprint,
            "digest": policy.digest,
            "policy": policy.to_json(),
        },
    )


def outcome_event(trace: Trace) -> tuple[str, NewEvent]:
    """The content address and `OutcomeRecorded` event of a trace's filter outcome."""
    payload = encode_outcome(trace)
    digest = outcome_digest(payload)
    return digest, NewEvent(OUTCOME_RECORDED, outcome_stream(digest), payload)


def decision_event(
    *,
    decision_id: uuid.UUID,
    tenant: str,
    preview: bool,
    trace: Trace,
    outcome: str,
    order: str | None = None,
    features: RequestFeatures | None,
    digest: str | None,
    body: bytes | None,
    idempotency_key: str | None = None,
) -> NewEvent:
    """`DecisionMade` (stream: the tenant's sequence; event id: the decision id). `order` is
    `order_digest(trace.ranked)` when the caller has it already (the hot path caches it).
    `idempotency_key` (the SHA-256 hex of the request's Idempotency-Key, never the key) is
    written only when given, so every other payload reads as it always did."""
    selected = trace.selected
    payload: dict[str, Any] = {
        "schema": DECISION_SCHEMA,
        "decision_id": str(decision_id),
        "tenant": tenant,
        "preview": preview,
        "request_digest": digest,
        "features": None if features is None else features.to_json(),
        "policy": {"fingerprint": trace.policy.fingerprint, "digest": trace.policy.digest},
        "catalog_version": trace.catalog.version,
        "evaluator_version": trace.evaluator_version,
        "tokens": tokens_json(trace.tokens),
        "filter": {"outcome": outcome, "passing": len(trace.ranked)},
        "rank": {"order_sha256": order or order_digest(trace.ranked)},
        "selected": None
        if selected is None
        else {"index": selected, "id": trace.catalog.entries[selected].id},
        "plan": list(trace.plan),
    }
    if idempotency_key is not None:
        payload["idempotency_key_sha256"] = idempotency_key
    return NewEvent(
        DECISION_MADE,
        tenant_stream(tenant),
        payload,
        attachments={} if body is None else {REQUEST_BODY: body},
        event_id=decision_id,
    )


def seal_event(tenant: str) -> NewEvent:
    """`DecisionsSealed`: the next event of the tenant's sequence, carrying no decision. Recorded
    after the tenant's latest decision, it proves that decision is the latest one up to its own
    recorded time (the upper boundary of a completeness proof when no later decision exists)."""
    return NewEvent(
        DECISIONS_SEALED, tenant_stream(tenant), {"schema": SEAL_SCHEMA, "tenant": tenant}
    )
