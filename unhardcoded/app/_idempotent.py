"""The HTTP side of idempotency keys (docs/gateway.md, "Idempotency"): claim the request's
`Idempotency-Key` before the decision, store (or give up) the claim once the answer is known,
and send a stored answer again with `idempotent-replayed: true`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from router.core import Policy
from router.services.decisions import has_no_log_rule
from router.services.gateway import IDEMPOTENCY_HEADER, IdempotencyStore, StoredAnswer
from unhardcoded.app._errors import retry_headers, translate

__all__ = ["REPLAYED_HEADER", "idempotent"]

#: Set on an answer sent again from the store (Stripe's header).
REPLAYED_HEADER = "idempotent-replayed"


def _kept(response: Response) -> dict[str, str]:
    """The headers a replay sends again: the media type and the gateway's own `x-*` headers
    (decision id, routed model, `x-should-retry` …) and `retry-after*` — no cookie, no length."""
    return {
        name: value
        for name, value in response.headers.items()
        if name == "content-type" or name.startswith(("x-", "retry-after"))
    }


def _replay(request: Request, stored: StoredAnswer) -> Response:
    request.state.decision_id = stored.decision_id
    return Response(
        stored.body,
        status_code=stored.status,
        headers={**stored.headers, REPLAYED_HEADER: "true"},
    )


async def idempotent(
    request: Request,
    store: IdempotencyStore | None,
    tenant: str,
    document: Mapping[str, Any],
    policy: Policy,
    handle: Callable[[str | None], Awaitable[Response]],
) -> Response:
    """Answer with `handle(key digest)` once per (tenant, Idempotency-Key) within the window;
    without the header (or with idempotency turned off: no store) this is `handle(None)`. What
    is kept and what gives the key up: docs/gateway.md, "Idempotency"."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None or store is None:
        return await handle(None)
    claimed = await store.claim(tenant, key, document)
    if isinstance(claimed, StoredAnswer):
        return _replay(request, claimed)
    decision_id: str | None = None
    try:
        response = await handle(claimed.key_digest)
    except Exception as exc:
        status, body = translate(exc)
        # An error after the decision names it in its body (no_entry_passes, the plan failed).
        decision_id = body["error"].get("decision_id")
        response = JSONResponse(body, status_code=status, headers=retry_headers(exc, status))
    except BaseException:
        # Cancelled (the server is stopping): nobody gets this answer, a retry may claim again.
        with anyio.CancelScope(shield=True):
            await store.release(claimed)
        raise
    with anyio.CancelScope(shield=True):
        if response.headers.get("x-should-retry") == "true":
            await store.release(claimed)
        else:
            keep = not isinstance(response, StreamingResponse) and not has_no_log_rule(policy)
            await store.finish(
                claimed,
                decision_id=getattr(request.state, "decision_id", None) or decision_id,
                status=response.status_code,
                headers=_kept(response),
                body=bytes(response.body) if keep else None,
            )
    return response
