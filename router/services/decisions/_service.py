"""`DecisionService`: decide and record, record attempts, read decisions back as traces."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from ledger import (
    Envelope,
    EventNotFoundError,
    InclusionProof,
    InclusionProofBundle,
    Ledger,
    NewEvent,
    NotSequencedError,
    SignedCheckpoint,
    StreamVersionConflictError,
    canonical_json,
    uuid7,
)
from router.core import (
    Catalog,
    Evaluator,
    Issue,
    NoEntryPasses,
    Policy,
    RequestError,
    RequestFeatures,
    Trace,
    estimate_features,
)
from router.services.decisions._codec import (
    DecisionPayload,
    decode_decision,
    order_digest,
    rebuild_trace,
)
from router.services.decisions._errors import (
    DecisionError,
    DecisionNotFoundError,
    NoEntryPassesRecorded,
    RecordMismatchError,
    UnknownCatalogError,
)
from router.services.decisions._events import (
    ATTEMPT_FINISHED,
    ATTEMPT_SCHEMA,
    DECISION_MADE,
    REQUEST_BODY,
    attempt_stream,
    catalog_event,
    catalog_stream,
    decision_event,
    has_no_log_rule,
    outcome_event,
    outcome_stream,
    policy_event,
    request_digest,
)
from router.services.decisions._pageproof import (
    PageCompleteness,
    page_completeness,
    sequence_events,
)
from router.services.decisions._projection import (
    CatalogVersionInfo,
    DecisionPage,
    catch_up,
    query_catalogs,
    query_decisions,
)
from router.services.decisions._records import Attempt, BodyState, Decision, PublishedCatalog

__all__ = ["DecisionService"]

MAX_TENANT = 200
"""Longest tenant name (characters)."""


class _Lru(OrderedDict[Any, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


def _check_tenant(tenant: object) -> str:
    if not isinstance(tenant, str) or not tenant or len(tenant) > MAX_TENANT:
        raise RequestError(
            [
                Issue(
                    "/tenant",
                    repr(tenant),
                    f"a 1..{MAX_TENANT} character string",
                    f"tenant must be a 1..{MAX_TENANT} character string, found {tenant!r}",
                )
            ]
        )
    return tenant


class DecisionService:
    """Decide and record (see the package docstring). One per process, shared by all tasks."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        store_request_bodies: bool = False,
        evaluator: Evaluator | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.ledger = ledger
        self.store_request_bodies = store_request_bodies
        self.evaluator = evaluator or Evaluator()
        self._known: set[str] = set()  # stream ids known to hold their first event
        self._pending: dict[str, asyncio.Future[bool]] = {}
        self._prepared: _Lru = _Lru(cache_size)
        self._catalogs: _Lru = _Lru(8)
        self._policies: _Lru = _Lru(256)
        self._outcomes: _Lru = _Lru(256)

    # -- writing -------------------------------------------------------------------------------

    async def _once(self, event: NewEvent) -> bool:
        """Append `event` as the first event of its stream, once across processes: True when
        this call recorded it, False when it was there already (with the same payload)."""
        stream = event.stream_id
        if stream in self._known:
            return False
        pending = self._pending.get(stream)
        if pending is not None:
            await asyncio.shield(pending)
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[stream] = future
        try:
            try:
                await self.ledger.append(event, expected_version=0)
                created = True
            except StreamVersionConflictError:
                first = (await self.ledger.stream(stream, 1, 1))[0]
                if first.type != event.type or first.payload != canonical_json(event.payload):
                    raise RecordMismatchError(
                        f"stream {stream!r} starts with another {first.type} than the one "
                        "being recorded"
                    ) from None
                created = False
            self._known.add(stream)
            future.set_result(created)
            return created
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters re-raise it themselves
            raise
        finally:
            del self._pending[stream]

    async def publish_catalog(self, catalog: Catalog) -> PublishedCatalog:
        """Record `CatalogPublished` for this version unless it is already published."""
        created = await self._once(catalog_event(catalog))
        self._catalogs.put(catalog.version, catalog)
        return PublishedCatalog(catalog.version, catalog.name, len(catalog.entries), created)

    async def record_policy(self, policy: Policy) -> bool:
        """Record `PolicyRecorded` unless the fingerprint's stream already starts with it."""
        created = await self._once(policy_event(policy))
        self._policies.put(policy.digest, policy)
        return created

    def evaluate(
        self, policy: Policy, catalog: Catalog, features: RequestFeatures | None = None
    ) -> Trace:
        """Evaluate without recording (memoized); `NoEntryPasses` when nothing passes."""
        return self.evaluator.evaluate(policy, catalog, features)

    async def decide(
        self,
        tenant: str,
        policy: Policy,
        catalog: Catalog,
        *,
        request_body: Mapping[str, Any] | None = None,
        features: RequestFeatures | None = None,
        preview: bool = False,
        idempotency_key: str | None = None,
    ) -> Decision:
        """Evaluate, record, and return once the `DecisionMade` event is durable.

        `idempotency_key` is the SHA-256 hex of the request's Idempotency-Key (the gateway never
        hands over the key itself); the decision records it.

        `policy` was parsed against `catalog.schema` where the request entered (the HTTP or CLI
        edge). `features` default to the estimate from `request_body`. Raise `NoEntryPassesRecorded`
        (a `NoEntryPasses`, carrying the recorded decision) when no entry passes. Invalid input
        (`RequestError`, `MissingTokensError`) is raised before anything is recorded."""
        tenant = _check_tenant(tenant)
        digest: str | None = None
        body: bytes | None = None
        if request_body is not None:
            digest, raw = request_digest(request_body)
            if features is None:
                features = estimate_features(request_body)
            if self.store_request_bodies and not has_no_log_rule(policy):
                body = raw
        try:
            trace = self.evaluator.evaluate(policy, catalog, features)
        except NoEntryPasses as exc:
            trace = exc.trace
        key = (policy.digest, catalog.version, trace.tokens)
        prepared = self._prepared.get(key)
        if prepared is None:
            outcome, outcome_new = outcome_event(trace)
            await self.publish_catalog(catalog)
            await self.record_policy(policy)
            await self._once(outcome_new)
            prepared = (outcome, order_digest(trace.ranked))
            self._prepared.put(key, prepared)
        decision_id = uuid7()
        event = decision_event(
            decision_id=decision_id,
            tenant=tenant,
            preview=preview,
            trace=trace,
            outcome=prepared[0],
            order=prepared[1],
            features=features,
            digest=digest,
            body=body,
            idempotency_key=idempotency_key,
        )
        (envelope,) = await self.ledger.append(event)
        recorded = Decision(
            decision_id=decision_id,
            tenant=tenant,
            preview=preview,
            trace=trace,
            request_digest=digest,
            body="stored" if body is not None else "not stored",
            position=envelope.position,
            recorded_at=envelope.recorded_at,
            idempotency_key=idempotency_key,
        )
        if trace.selected is None:
            raise NoEntryPassesRecorded(recorded)
        return recorded

    async def record_attempt(self, decision: Decision, attempt: Attempt) -> Attempt:
        """Record `attempt` as the decision's `AttemptFinished` number `attempt.number`
        (1-based, consecutive), durable on return; the attempt as the ledger holds it.

        `attempt.entry` must be in the decision's plan (fallback never leaves it)."""
        if attempt.entry not in decision.plan:
            raise DecisionError(
                f"attempt {attempt.number} of decision {decision.decision_id}: entry "
                f"{attempt.entry!r} is not in the decision's plan {list(decision.plan)}"
            )
        payload = attempt.payload(decision.decision_id, ATTEMPT_SCHEMA)
        event = NewEvent(ATTEMPT_FINISHED, attempt_stream(decision.decision_id), payload)
        (envelope,) = await self.ledger.append(event, expected_version=attempt.number - 1)
        return attempt.recorded(envelope.recorded_at)

    async def erase_request_body(self, decision_id: uuid.UUID | str) -> None:
        """Erase a decision's stored request body for good (GDPR); `verify` stays green."""
        envelope = await self._decision_envelope(decision_id)
        if REQUEST_BODY not in envelope.attachment_digests:
            raise DecisionError(f"decision {envelope.event_id} has no stored request body")
        await self.ledger.erase_attachment(envelope.event_id, REQUEST_BODY)

    async def request_body(self, decision_id: uuid.UUID | str) -> bytes | None:
        """A decision's stored request body (canonical JSON bytes), None when none is stored or
        it was erased."""
        envelope = await self._decision_envelope(decision_id)
        if REQUEST_BODY not in envelope.attachment_digests:
            return None
        return await self.ledger.attachment(envelope.event_id, REQUEST_BODY)

    # -- reading -------------------------------------------------------------------------------

    async def _first(self, stream: str, what: str) -> Envelope:
        found = await self.ledger.stream(stream, 1, 1)
        if not found:
            raise RecordMismatchError(f"the ledger has no {what} (stream {stream!r})")
        return found[0]

    async def _cached(self, cache: _Lru, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        value = cache.get(key)
        if value is None:
            value = await load()
            cache.put(key, value)
        return value

    async def catalog_version(self, version: str) -> Catalog:
        """A published catalog by its full version digest."""

        async def load() -> Catalog:
            found = await self.ledger.stream(catalog_stream(version), 1, 1)
            if not found:
                raise UnknownCatalogError(f"no published catalog version {version}")
            catalog = Catalog.from_json(found[0].payload_json()["catalog"])
            if catalog.version != version:
                raise RecordMismatchError(f"published catalog {version} has another content")
            return catalog

        catalog: Catalog = await self._cached(self._catalogs, version, load)
        return catalog

    async def policy(self, fingerprint: str, digest: str | None = None) -> Policy:
        """A recorded policy by fingerprint (checked against `digest` when given)."""

        async def load() -> Policy:
            first = await self._first(fingerprint, f"policy {fingerprint}")
            payload = first.payload_json()
            policy = Policy.from_json(payload["policy"])
            if policy.digest != payload["digest"] or policy.fingerprint != fingerprint:
                raise RecordMismatchError(f"recorded policy {fingerprint} has another content")
            return policy

        policy: Policy = await self._cached(self._policies, digest or fingerprint, load)
        if digest is not None and policy.digest != digest:
            raise RecordMismatchError(f"policy {fingerprint} has digest {policy.digest}")
        return policy

    async def _decision_envelope(self, ref: uuid.UUID | str | int) -> Envelope:
        try:
            envelope = await self.ledger.get(ref)
        except EventNotFoundError:
            raise DecisionNotFoundError(f"no decision {ref}") from None
        if envelope.type != DECISION_MADE:
            raise DecisionNotFoundError(f"event {ref} is a {envelope.type}, not a decision")
        return envelope

    async def decision_from(self, envelope: Envelope) -> Decision:
        """Rebuild a recorded decision from its `DecisionMade` envelope (plus the ledger).

        A payload that is not a well-formed decision raises `RecordMismatchError` naming the
        event: the ledger accepts any payload, the decoder must not trust it."""
        try:
            payload = decode_decision(envelope.payload)
        except RecordMismatchError as exc:
            raise RecordMismatchError(
                f"event {envelope.event_id} at position {envelope.position} is a "
                f"{envelope.type} whose payload is {exc}"
            ) from None
        try:
            return await self._decision_from(envelope, payload)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordMismatchError(
                f"event {envelope.event_id} at position {envelope.position} is a "
                f"{envelope.type} whose payload is not a well-formed decision "
                f"({type(exc).__name__}: {exc})"
            ) from None

    async def _decision_from(self, envelope: Envelope, payload: DecisionPayload) -> Decision:
        policy = await self.policy(payload.fingerprint, payload.policy_digest)
        catalog = await self.catalog_version(payload.catalog_version)
        digest = payload.outcome

        async def load_outcome() -> Any:
            return (await self._first(outcome_stream(digest), f"outcome {digest}")).payload_json()

        outcome = await self._cached(self._outcomes, digest, load_outcome)
        trace = rebuild_trace(payload, outcome, policy, catalog)
        decision_id = uuid.UUID(payload.decision_id)
        if decision_id != envelope.event_id:
            raise RecordMismatchError(
                f"decision {decision_id} is recorded as event {envelope.event_id}"
            )
        body: BodyState = "not stored"
        if REQUEST_BODY in envelope.attachment_digests:
            stored = await self.ledger.attachment(envelope.event_id, REQUEST_BODY)
            body = "erased" if stored is None else "stored"
        attempts = await self.ledger.stream(attempt_stream(decision_id), 1, 10_000)
        return Decision(
            decision_id=decision_id,
            tenant=payload.tenant,
            preview=payload.preview,
            trace=trace,
            request_digest=payload.request_digest,
            body=body,
            position=envelope.position,
            recorded_at=envelope.recorded_at,
            attempts=tuple(Attempt.from_envelope(a) for a in attempts),
            idempotency_key=payload.idempotency_key_sha256,
        )

    async def decision(self, ref: uuid.UUID | str | int) -> Decision:
        """A decision by id (its event id) or ledger position, with its trace and attempts."""
        return await self.decision_from(await self._decision_envelope(ref))

    async def proof(self, decision_id: uuid.UUID) -> InclusionProofBundle:
        """The inclusion proof of a decision's event, signing a checkpoint first when none
        covers it yet."""
        envelope = await self._decision_envelope(decision_id)
        try:
            return await self.ledger.inclusion_proof(envelope.event_id)
        except NotSequencedError:
            await self.ledger.sequence()
            return await self.ledger.inclusion_proof(envelope.event_id)

    async def decisions(
        self,
        *,
        tenant: str | None = None,
        fingerprint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> DecisionPage:
        """Decisions in ledger order, filtered by tenant, policy fingerprint and time range
        (`since` ≤ recorded_at < `until`); pass a page's `next_cursor` to get the next page."""
        if limit < 1 or limit > 10_000:
            raise DecisionError(f"limit must be within 1..10000, got {limit}")
        after = -1
        if cursor is not None:
            # isdigit() alone lets "²" through; a position is a 64-bit integer in the database.
            if not (cursor.isascii() and cursor.isdigit()) or int(cursor) >= 2**63:
                raise DecisionError(f"not a decision page cursor: {cursor[:40]!r}")
            after = int(cursor)
        await catch_up(self.ledger)
        return await query_decisions(
            self.ledger,
            tenant=tenant,
            fingerprint=fingerprint,
            since=since,
            until=until,
            after=after,
            limit=limit,
        )

    async def page_completeness(
        self, tenant: str, page: DecisionPage, cursor: str | None
    ) -> PageCompleteness:
        """What proves that `page` (of `tenant`'s decisions, read with `cursor`) holds every
        decision of the tenant in its range: its neighbours and seals in the tenant's sequence
        (docs/http.md, "Completeness of a page")."""
        after = -1 if cursor is None else int(cursor)  # checked by `decisions`
        return await page_completeness(self.ledger, tenant, page, after)

    async def sequence_events(
        self, tenant: str, first: int, last: int
    ) -> tuple[list[Envelope], list[InclusionProof], SignedCheckpoint]:
        """Versions `first`..`last` of `tenant`'s sequence with their inclusion proofs against
        one signed checkpoint (signed first when none covers them yet)."""
        events, head = await sequence_events(self.ledger, tenant, first, last)
        positions = [e.position for e in events]
        proofs = await self.ledger.inclusion_proofs(positions, head.tree_size) if events else []
        return events, proofs, head

    async def catalogs(self) -> list[CatalogVersionInfo]:
        """Every published catalog version, oldest first."""
        await catch_up(self.ledger)
        return await query_catalogs(self.ledger)

    async def latest_catalog(self) -> Catalog | None:
        """The most recently published catalog version, or None when none is published."""
        versions = await self.catalogs()
        return await self.catalog_version(versions[-1].version) if versions else None

    async def catalog(self, ref: str) -> Catalog:
        """A published catalog by `latest`, full version digest, or a unique digest prefix."""
        if ref == "latest":
            latest = await self.latest_catalog()
            if latest is None:
                raise UnknownCatalogError("no catalog version is published yet")
            return latest
        text = ref.strip().lower()
        if not text or any(c not in "0123456789abcdef" for c in text):
            raise UnknownCatalogError(
                f"not a catalog version reference: {ref!r} (expected 'latest' or hex digits)"
            )
        if len(text) == 64:
            return await self.catalog_version(text)
        await catch_up(self.ledger)
        found = await query_catalogs(self.ledger, prefix=text)
        if not found:
            raise UnknownCatalogError(f"no published catalog version starts with {text}")
        if len(found) > 1:
            raise UnknownCatalogError(
                f"{len(found)} published catalog versions start with {text}: give more digits"
            )
        return await self.catalog_version(found[0].version)
