"""The decision record: every catalog, policy, decision and upstream attempt as ledger events,
with the full filter and rank outcome stored compactly and readable back as a trace.

The API the gateway, `/x/rank`, replay and reports call (docs/decisions.md has the event schemas
and the encoding)::

    async with open_ledger(url) as ledger:
        service = DecisionService(ledger, store_request_bodies=settings.store_request_bodies)

        # Hot path: evaluate (memoized), record, return once DecisionMade is durable. The policy
        # is a parsed `Policy`: parsing happens once, where the request enters.
        # CatalogPublished / PolicyRecorded / OutcomeRecorded are recorded the first time they are
        # needed (once across processes: each is the first event of its own stream, appended
        # with expected_version=0), then remembered in-process: no extra query per decision.
        try:
            decision = await service.decide(tenant, policy, catalog,
                                            request_body=body, preview=False)
        except NoEntryPassesRecorded as exc:      # a NoEntryPasses: the decision IS recorded
            exc.decision.decision_id, exc.trace.summary()
        decision.decision_id, decision.selected, decision.plan, decision.trace

        # Each upstream attempt, numbered from 1, entries only from the plan; durable on return
        # (concurrent appends share the ledger's group commit):
        await service.record_attempt(decision, Attempt(1, decision.plan[0], "error",
                                                       latency_ms=30_000.0, error_class="timeout"))

        # Read models (any process): the human trace (`unhardcoded rank --json` shape plus
        # decision_id, tenant, recorded_at, preview, attempts, …), and paginated listings.
        (await service.decision(decision_id)).to_json()
        page = await service.decisions(tenant="acme", since=..., until=..., limit=100)
        page = await service.decisions(tenant="acme", cursor=page.next_cursor)

        # Catalog versions (content-addressed; publishing the same content twice is a no-op):
        await service.publish_catalog(catalog)      # -> PublishedCatalog(created=True/False)
        await service.catalogs()                    # -> [CatalogVersionInfo], oldest first
        await service.catalog("latest" | "3f2a…" | full digest)   # -> Catalog

        # GDPR: request bodies are stored only when the operator enables it and the policy has
        # no no_log rule, as an erasable attachment outside the hashed payload.
        await service.erase_request_body(decision_id)

Events and streams: `CatalogPublished` (stream `catalog/{version}`), `PolicyRecorded` (stream =
the policy fingerprint, its first event), `OutcomeRecorded` (stream `outcome/{digest}`: one filter
outcome, shared by every decision with that outcome), `DecisionMade` (stream
`decisions/{tenant}`: the tenant's gapless decision sequence; event id = decision id, a UUIDv7;
ledgers of release 0.1.0 recorded it in the policy fingerprint's stream), `DecisionsSealed` (the
same stream: the end of a completeness proof), `AttemptFinished` (stream `attempts/{decision
id}`, version = attempt number).

Listings query a projection (tables `decision_index`, `catalog_index`, migration
`0002_decisions`) owned by this service, rebuildable from the ledger; `catch_up` brings it up to
date before every query, so a fresh process sees every decision.
"""

from router.services.decisions._codec import (
    MASK_ENCODING,
    OUTCOME_SCHEMA,
    DecisionPayload,
    RankOrder,
    decode_decision,
    decode_failures,
    encode_outcome,
    order_digest,
    outcome_digest,
    rank_order,
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
    CATALOG_PUBLISHED,
    CATALOG_SCHEMA,
    DECISION_MADE,
    DECISION_SCHEMA,
    DECISIONS_SEALED,
    OUTCOME_RECORDED,
    POLICY_RECORDED,
    POLICY_SCHEMA,
    REQUEST_BODY,
    SEAL_SCHEMA,
    attempt_stream,
    catalog_stream,
    has_no_log_rule,
    outcome_stream,
    request_digest,
    seal_event,
    tenant_stream,
)
from router.services.decisions._pageproof import MAX_SEQUENCE_EVENTS, Neighbour, PageCompleteness
from router.services.decisions._projection import (
    CatalogVersionInfo,
    DecisionPage,
    DecisionSummary,
    catch_up,
    rebuild_projection,
)
from router.services.decisions._records import Attempt, Decision, PublishedCatalog
from router.services.decisions._service import MAX_TENANT, DecisionService

__all__ = [
    "ATTEMPT_FINISHED",
    "ATTEMPT_SCHEMA",
    "CATALOG_PUBLISHED",
    "CATALOG_SCHEMA",
    "DECISIONS_SEALED",
    "DECISION_MADE",
    "DECISION_SCHEMA",
    "MASK_ENCODING",
    "MAX_SEQUENCE_EVENTS",
    "MAX_TENANT",
    "OUTCOME_RECORDED",
    "OUTCOME_SCHEMA",
    "POLICY_RECORDED",
    "POLICY_SCHEMA",
    "REQUEST_BODY",
    "SEAL_SCHEMA",
    "Attempt",
    "CatalogVersionInfo",
    "Decision",
    "DecisionError",
    "DecisionNotFoundError",
    "DecisionPage",
    "DecisionPayload",
    "DecisionService",
    "DecisionSummary",
    "Neighbour",
    "NoEntryPassesRecorded",
    "PageCompleteness",
    "PublishedCatalog",
    "RankOrder",
    "RecordMismatchError",
    "UnknownCatalogError",
    "attempt_stream",
    "catalog_stream",
    "catch_up",
    "decode_decision",
    "decode_failures",
    "encode_outcome",
    "has_no_log_rule",
    "order_digest",
    "outcome_digest",
    "outcome_stream",
    "rank_order",
    "rebuild_projection",
    "rebuild_trace",
    "request_digest",
    "seal_event",
    "tenant_stream",
]
