"""HTTP routes: thin — authenticate, read the body, call the gateway service, shape the answer."""

from __future__ import annotations

import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from ledger import Ledger, SignedCheckpoint
from router.core import Catalog, Policy, Trace
from router.services.decisions import (
    Decision,
    DecisionNotFoundError,
    DecisionService,
    tenant_stream,
)
from router.services.gateway import (
    BadRequestError,
    Gateway,
    IdempotencyStore,
    KeyStore,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    Principal,
    RoutingRequest,
    Scope,
    parse_json_body,
    provider_keys,
    split_request,
)
from router.services.replay import DecisionFilter, ReplayService
from router.services.witness import CosignatureStore
from unhardcoded.app._idempotent import idempotent
from unhardcoded.app._openapi import CHAT_BODY, RANK_BODY

__all__ = [
    "CHAT_PATH",
    "Services",
    "add_chat_route",
    "chat_completions",
    "router",
    "sequence_path",
]

router = APIRouter()
CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class Services:
    """What the handlers use, built by the app's lifespan."""

    gateway: Gateway
    keys: KeyStore
    ledger: Ledger
    max_body_bytes: int
    cosignatures: CosignatureStore
    idempotency: IdempotencyStore | None = None


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _principal(request: Request, scope: Scope) -> Principal:
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header[:7].lower() == "bearer " else None
    principal = await _services(request).keys.authenticate(presented or None)
    request.state.tenant = principal.tenant
    request.state.key_id = principal.key_id
    if not principal.can(scope):
        raise PermissionDeniedError(f"this API key lacks the {scope!r} scope")
    return principal


async def _read_body(request: Request) -> Any:
    limit = _services(request).max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(limit)
        chunks.append(chunk)
    return parse_json_body(b"".join(chunks))


async def _object_body(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    """The body of a route whose body is an object of `fields` only."""
    body = await _read_body(request)
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object", pointer="")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise BadRequestError(
            f"unknown field (expected {', '.join(fields)})", pointer=f"/{unknown[0]}"
        )
    return body


def _decision_headers(
    trace: Trace,
    decision_id: str | None,
    routed: str | None = None,
    upstream: str | None = None,
) -> dict[str, str]:
    headers = {
        "x-policy-fingerprint": trace.policy.fingerprint,
        "x-catalog-version": trace.catalog.version,
    }
    if decision_id is not None:
        headers["x-decision-id"] = decision_id
    if routed is not None:
        headers["x-routed-model"] = routed
    if upstream is not None:
        headers["x-upstream"] = upstream
    return headers


async def chat_completions(request: Request) -> Response:
    """Decide (recorded durably before any upstream byte), then call the plan with fallback;
    once per `Idempotency-Key` (docs/gateway.md, "Idempotency")."""
    principal = await _principal(request, "route")
    document = await _read_body(request)
    policy_document, body = split_request(document)
    services = _services(request)
    routing = await services.gateway.parse(policy_document, body)
    return await idempotent(
        request,
        services.idempotency,
        principal.tenant,
        document,
        routing.policy,
        lambda key: _chat(request, principal, routing, body, key),
    )


def add_chat_route(app: FastAPI) -> None:
    """Declare the chat route on `app` itself rather than in `router`: FastAPI wraps each
    included router in a layer that matches every request a second time (~10 µs per request),
    which the gateway's hot route need not pay."""
    app.add_api_route(
        CHAT_PATH,
        chat_completions,
        methods=["POST"],
        openapi_extra=CHAT_BODY,
        summary="OpenAI-compatible chat completion, routed by the request's policy",
        response_description="OpenAI's chat.completion (or SSE chunks with stream: true); "
        "headers x-decision-id, x-policy-fingerprint, x-catalog-version, x-routed-model",
    )


async def _chat(
    request: Request,
    principal: Principal,
    routing: RoutingRequest,
    body: dict[str, Any],
    idempotency_key: str | None,
) -> Response:
    keys = provider_keys(request.headers.items())
    gateway = _services(request).gateway
    decision = await gateway.decide(principal, routing, idempotency_key=idempotency_key)
    decision_id = str(decision.decision_id)
    request.state.decision_id = decision_id
    if body.get("stream"):
        opened = await gateway.open_stream(decision, body, keys)
        request.state.routed = opened.entry.id
        request.state.attempts = len(opened.attempts) + 1
        return StreamingResponse(
            opened.events(),
            media_type="text/event-stream",
            headers={
                **_decision_headers(
                    decision.trace, decision_id, opened.entry.id, opened.tried.provider
                ),
                "cache-control": "no-cache",
            },
        )
    completed = await gateway.complete(decision, body, keys)
    request.state.routed = completed.entry.id
    request.state.attempts = len(completed.attempts)
    return Response(
        completed.response.content,
        media_type="application/json",
        headers=_decision_headers(
            decision.trace, decision_id, completed.entry.id, gateway.target(completed.entry)[0]
        ),
    )


@router.post("/x/rank", openapi_extra=RANK_BODY, summary="Evaluate a policy, no upstream call")
async def rank(request: Request) -> JSONResponse:
    """The same evaluation path; not recorded unless `record: true` (then as a preview)."""
    principal = await _principal(request, "route")
    body = await _object_body(request, ("policy", "request", "record"))
    if "policy" not in body:
        raise BadRequestError("missing policy", pointer="/policy")
    record = body.get("record", False)
    if not isinstance(record, bool):
        raise BadRequestError("record must be a boolean", pointer="/record")
    chat = body.get("request")
    if chat is not None and not isinstance(chat, dict):
        raise BadRequestError("request must be an OpenAI chat request object", pointer="/request")
    gateway = _services(request).gateway
    routing = await gateway.parse(body["policy"], chat)
    decision_id: str | None = None
    if record:
        decision = await gateway.decide(principal, routing, preview=True)
        trace, decision_id = decision.trace, str(decision.decision_id)
    else:
        trace = gateway.evaluate(routing)
    request.state.decision_id = decision_id
    selected = trace.selected
    return JSONResponse(
        {
            "decision_id": decision_id,
            "recorded": decision_id is not None,
            "preview": decision_id is not None,
            "trace": trace.to_json(),
        },
        headers=_decision_headers(
            trace, decision_id, None if selected is None else trace.catalog.entries[selected].id
        ),
    )


async def _visible_decision(request: Request, decision_id: str) -> Decision:
    principal = await _principal(request, "read:own")
    try:
        # Only UUIDs name decisions here (a bare position would reach any event).
        ref = uuid.UUID(decision_id)
    except ValueError:
        raise NotFoundError(f"no decision {decision_id!r} (decision ids are UUIDs)") from None
    try:
        found = await _services(request).gateway.decisions.decision(ref)
    except DecisionNotFoundError:
        raise NotFoundError(f"no decision {decision_id}") from None
    if not principal.sees_tenant(found.tenant):
        raise NotFoundError(f"no decision {decision_id}")
    request.state.decision_id = decision_id
    return found


@router.get("/x/decisions/{decision_id}", summary="A recorded decision: full trace and attempts")
async def get_decision(request: Request, decision_id: str) -> JSONResponse:
    """The decision's full trace with its attempts (404 for another tenant's decision)."""
    return JSONResponse((await _visible_decision(request, decision_id)).to_json())


@router.get(
    "/x/decisions/{decision_id}/proof",
    summary="Inclusion proof of a decision against the latest signed checkpoint",
)
async def get_proof(request: Request, decision_id: str) -> JSONResponse:
    """The RFC 6962 inclusion proof of the DecisionMade event, with the checkpoint it leads to."""
    decision = await _visible_decision(request, decision_id)
    proof = await _services(request).gateway.decisions.proof(decision.decision_id)
    return JSONResponse(proof.to_json())


@router.get("/x/decisions", summary="Recorded decisions, newest first, paginated")
async def list_decisions(
    request: Request,
    limit: int = Query(default=50, ge=1, le=500),
    cursor: int | None = Query(
        default=None, ge=0, le=2**63 - 1, description="A page's next_cursor (a ledger position)"
    ),
    tenant: str | None = Query(default=None, max_length=128),
) -> JSONResponse:
    """A page of decisions in ledger order: a tenant-scoped key sees its own tenant's only.
    Each decision carries its `position` (pass the page's `next_cursor` for the next page) and
    its `sequence`, its version in the tenant's sequence `decisions/<tenant>` (null for a
    decision recorded by release 0.1.0).

    **Completeness of a page.** A page of one tenant (`tenant=`, or any page of a tenant-scoped
    key) also carries `completeness`, what proves it holds every decision of the tenant after
    the cursor up to its last one (docs/bundles.md, "Completeness"): `stream`,
    `after_position` (the cursor; -1 on the first page), `lower` (the tenant's last sequence
    event at or before the cursor: the previous page's last decision; null on the first page,
    whose sequence starts at version 1), `seals` (the sequence's events between the page's
    decisions that are not decisions), `upper` (the tenant's event right after the page's last:
    the next page's first, or a seal; null when there was none yet), each as `version`,
    `position`, `event_id`, `type`; `first_version` and `last_version` (the versions all that
    covers), `unsequenced` (decisions of the page without a sequence number: not covered), and
    `proofs`: the path of `GET /x/sequences/{tenant}` that returns the leaf of every version
    from `first_version` to `last_version` with its inclusion proof against one signed
    checkpoint. A client checks the checkpoint's signature and each proof, then that the
    versions are consecutive, that each `DecisionMade` strictly between the neighbours is a
    decision of the page (same `decision_id`, `position`, `sequence`) and every other event a
    listed seal, that `after_position` is the cursor it asked with and `lower` at or before
    it: a decision left out of the page (or renumbered) breaks one of these.
    `reports.verify_page` is that check."""
    principal = await _principal(request, "read:own")
    if not principal.can("read:all"):
        if tenant is not None and tenant != principal.tenant:
            return JSONResponse({"data": [], "next_cursor": None})
        tenant = principal.tenant
    decisions = _services(request).gateway.decisions
    after = None if cursor is None else str(cursor)
    page = await decisions.decisions(tenant=tenant, limit=limit, cursor=after)
    body: dict[str, Any] = {
        "data": [d.to_json() for d in page.decisions],
        "next_cursor": page.next_cursor,
    }
    if tenant is not None:
        proof = await decisions.page_completeness(tenant, page, after)
        body["completeness"] = {
            **proof.to_json(),
            "proofs": (
                None  # the tenant has no sequence yet: nothing to prove
                if proof.to_version < proof.first_version
                else sequence_path(tenant, proof.first_version, proof.to_version)
            ),
        }
    return JSONResponse(body)


def sequence_path(tenant: str, first: int, last: int) -> str:
    """The path of `GET /x/sequences/{tenant}` for versions `first`..`last`."""
    name = urllib.parse.quote(tenant, safe="")
    return f"/x/sequences/{name}?from_version={first}&to_version={last}"


@router.get(
    "/x/sequences/{tenant}",
    summary="Events of a tenant's decision sequence, with their leaves and inclusion proofs",
)
async def sequence_events(
    request: Request,
    tenant: str,
    from_version: int = Query(ge=1, le=2**63 - 1, description="The first version"),
    to_version: int = Query(ge=1, le=2**63 - 1, description="The last version (included)"),
) -> JSONResponse:
    """Versions `from_version`..`to_version` (at most 1,000) of the sequence
    `decisions/<tenant>` (the tenant's decisions and seals, docs/bundles.md, "Completeness"),
    each as an audit bundle's event line — the bytes of its Merkle leaf and its inclusion proof
    (docs/bundles.md, "What is in the zip") — all against one signed checkpoint: `stream`,
    `checkpoint` (the signed note), `verifier_key`, `tree_size`, `events` (in version order;
    fewer than asked when the sequence ends sooner). A page of `GET /x/decisions` names the
    versions that prove it complete. 404 for another tenant's sequence."""
    principal = await _principal(request, "read:own")
    if not principal.sees_tenant(tenant):
        raise NotFoundError(f"no decision sequence of tenant {tenant!r}")
    from reports import event_line  # the bundle's line format, loaded on first use

    decisions = _services(request).gateway.decisions
    events, proofs, head = await decisions.sequence_events(tenant, from_version, to_version)
    return JSONResponse(
        {
            "stream": tenant_stream(tenant),
            "checkpoint": head.note,
            "verifier_key": head.verifier_key,
            "tree_size": head.tree_size,
            "events": [event_line(e, p.document()) for e, p in zip(events, proofs, strict=True)],
        }
    )


async def _latest_checkpoint(request: Request) -> tuple[SignedCheckpoint, CosignatureStore]:
    """The latest signed checkpoint (signing one when none is yet) and the cosignature store."""
    await _principal(request, "read:own")
    services = _services(request)
    checkpoint = await services.ledger.latest_checkpoint() or await services.ledger.sequence()
    if checkpoint is None:
        raise NotFoundError("no checkpoint signed yet")
    return checkpoint, services.cosignatures


@router.get("/x/checkpoints/latest", summary="The latest signed checkpoint of the ledger")
async def latest_checkpoint(request: Request) -> JSONResponse:
    """Tree size, root hash, the C2SP signed note, the verifier key and the witnesses'
    cosignature lines of that checkpoint (docs/witness.md)."""
    checkpoint, cosigned = await _latest_checkpoint(request)
    return JSONResponse(
        {
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash.hex(),
            "note": checkpoint.note,
            "verifier_key": checkpoint.verifier_key,
            "cosignatures": await cosigned.lines(checkpoint.tree_size),
        }
    )


@router.get(
    "/x/checkpoint",
    summary="The latest cosigned checkpoint, as a C2SP signed note",
    response_class=PlainTextResponse,
)
async def cosigned_checkpoint(request: Request) -> Response:
    """The latest checkpoint as a signed note (text/plain): the log's signature, then every
    witness cosignature stored for it (C2SP tlog-cosignature lines), ready for a note verifier
    configured with the log's key and the witnesses' keys."""
    checkpoint, cosigned = await _latest_checkpoint(request)
    return PlainTextResponse(await cosigned.cosigned_note(checkpoint))


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """Requests, decisions, attempts by error class, latency histograms."""
    body = _services(request).gateway.metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


_REPLAY_FIELDS = ("mode", "against", "policy", "filter", "record")
_FILTER_FIELDS = ("since", "until", "tenant", "fingerprint", "decision_ids")


def _replay_time(value: Any, pointer: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BadRequestError("expected an ISO 8601 time with a time zone", pointer=pointer)
    return parsed


def _replay_filter(raw: Any) -> DecisionFilter:
    if raw is None:
        return DecisionFilter()
    if not isinstance(raw, dict):
        raise BadRequestError("filter must be an object", pointer="/filter")
    unknown = sorted(set(raw) - set(_FILTER_FIELDS))
    if unknown:
        raise BadRequestError(
            f"unknown field (expected {', '.join(_FILTER_FIELDS)})", pointer=f"/filter/{unknown[0]}"
        )
    for name in ("tenant", "fingerprint"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise BadRequestError(f"{name} must be a string", pointer=f"/filter/{name}")
    ids = raw.get("decision_ids") or []
    if not isinstance(ids, list):
        raise BadRequestError("decision_ids must be a list", pointer="/filter/decision_ids")
    parsed: list[uuid.UUID] = []
    for i, value in enumerate(ids):
        try:
            parsed.append(uuid.UUID(value))
        except (TypeError, ValueError, AttributeError):
            raise BadRequestError(
                "not a decision id (a UUID)", pointer=f"/filter/decision_ids/{i}"
            ) from None
    return DecisionFilter(
        since=_replay_time(raw.get("since"), "/filter/since"),
        until=_replay_time(raw.get("until"), "/filter/until"),
        tenant=raw.get("tenant"),
        fingerprint=raw.get("fingerprint"),
        decision_ids=tuple(parsed),
    )


@router.post("/x/replay", summary="Replay recorded decisions (admin): proof or impact analysis")
async def replay(request: Request) -> JSONResponse:
    """`mode` "original" (each decision against its own catalog version: every recorded field
    must be reproduced) or "against" (`against`: a published version, "latest", or an inline
    catalog document; optional inline `policy`); `filter` {since, until, tenant, fingerprint,
    decision_ids}; `record` (default true: a ReplayRun event). The body of the answer is the
    report of `unhardcoded replay --json` (docs/replay.md)."""
    await _principal(request, "admin")
    body = await _object_body(request, _REPLAY_FIELDS)
    mode = body.get("mode", "against" if "against" in body else None)
    if mode not in ("original", "against"):
        raise BadRequestError('mode must be "original" or "against"', pointer="/mode")
    record = body.get("record", True)
    if not isinstance(record, bool):
        raise BadRequestError("record must be a boolean", pointer="/record")
    flt = _replay_filter(body.get("filter"))
    replayer = ReplayService(DecisionService(_services(request).ledger))
    if mode == "original":
        if "against" in body or "policy" in body:
            raise BadRequestError(
                "against and policy do not apply to mode original", pointer="/mode"
            )
        report = await replayer.original(flt, record=record)
        return JSONResponse(report.to_json())
    target_ref = body.get("against")
    if isinstance(target_ref, str):
        target = await replayer.decisions.catalog(target_ref)
    elif isinstance(target_ref, dict):
        target = Catalog.from_json(target_ref)
    else:
        raise BadRequestError(
            "against must be a published catalog version, 'latest', or a catalog object",
            pointer="/against",
        )
    raw_policy = body.get("policy")
    policy = None if raw_policy is None else Policy.from_json(raw_policy, target.schema)
    report = await replayer.against(target, flt, policy=policy, record=record)
    return JSONResponse(report.to_json())
