"""The OpenAPI document the app serves at `/openapi.json`: FastAPI's, completed with the request
bodies, what the handlers answer besides 200, and the policy's JSON Schema.

The handlers read their bodies themselves (so that every malformed body gets the gateway's own
precise error), so FastAPI can see neither the bodies nor the statuses they answer: the body
shapes below (`CHAT_BODY`, `RANK_BODY`, given to the routes as `openapi_extra`) and
`ROUTE_STATUSES` describe them, in the error shape every one of them uses, and a test sends
generated requests to every route and fails on a status the document does not list. A malformed
query or path parameter is a 400 here (not FastAPI's 422): 422 is the gateway's "no catalog
entry passes the policy".
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from router.core import POLICY_SCHEMA_PATH, policy_json_schema

__all__ = ["CHAT_BODY", "RANK_BODY", "ROUTE_STATUSES", "install_openapi", "policy_components"]

#: Where the policy's schema sits in the document (its definitions beside it, same prefix).
POLICY_REF = "#/components/schemas/sigma_pol_v1"
_POLICY_COMPONENT = POLICY_REF.rsplit("/", 1)[1]
_ERROR_COMPONENT = "Error"

_POLICY = (
    "The routing policy for this request: a sigma-pol/v1 document "
    '(`{"v": "sigma-pol/v1", "rules": [...], "rank": [...], "tokens": {...}, '
    '"fallback": {"max_attempts": N}}`). It decides which catalog entry serves the request and '
    "the fallback plan; the request's `model` is replaced by the routed entry's model. With the "
    'official openai package: `extra_body={"policy": ...}`. Errors point into it as `/policy/...`. '
    "Its JSON Schema: /x/schema/sigma-pol-v1.json."
)


class ChatCompletionRequest(BaseModel):
    """An OpenAI Chat Completions request plus the gateway's `policy`."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        default="auto", description="Ignored for routing (the policy decides); any string."
    )
    messages: list[dict[str, Any]] = Field(min_length=1, description="OpenAI chat messages.")
    stream: bool = Field(default=False, description="Server-sent events, as OpenAI's.")
    policy: dict[str, Any] = Field(description=_POLICY)


class RankRequest(BaseModel):
    """Evaluate a policy without calling any upstream."""

    model_config = ConfigDict(extra="forbid")

    policy: dict[str, Any] = Field(description=_POLICY)
    request: dict[str, Any] | None = Field(
        default=None,
        description="An OpenAI chat request whose token counts feed cost_per_run "
        "(when the policy has no `tokens`).",
    )
    record: bool = Field(
        default=False,
        description="Record the decision in the ledger, marked as a preview (default: not "
        "recorded).",
    )


def _body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    policy = schema["properties"]["policy"]
    schema["properties"]["policy"] = {"$ref": POLICY_REF, "description": policy["description"]}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send a retried request at most once: a retry with the same key (same "
    "tenant, same body) within the window gets the first answer again, with the same "
    "x-decision-id and `idempotent-replayed: true`, without a second decision or upstream "
    "call. 1 to 255 printable ASCII characters (e.g. a UUID). See docs/gateway.md, "
    '"Idempotency".',
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}

CHAT_BODY = {"requestBody": _body(ChatCompletionRequest), "parameters": [_IDEMPOTENCY_KEY]}
RANK_BODY = {"requestBody": _body(RankRequest)}

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "OpenAI's error shape; `param` is a JSON pointer into the request body (or "
    "the name of the query parameter) where there is one.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

_STATUS_TEXT = {
    400: "Invalid request: a malformed body, query or path parameter, or policy (`param` points "
    "at it; policy errors list every issue)",
    401: "Missing, malformed, unknown or revoked API key",
    403: "The API key lacks the scope this route needs",
    404: "Not found (another tenant's decision is not found either)",
    409: "The decision is not in a signed checkpoint yet: retry shortly",
    413: "The request body is larger than the configured limit",
    422: "No catalog entry passes the policy (the error carries the trace's counts), or the "
    "provider refused the request with a 422",
    429: "Every attempt was rate limited by its provider (`retry-after` when it said when)",
    500: "Internal error",
    502: "Every attempt of the plan failed (the error lists the attempts)",
    503: "The ledger or gateway database is unavailable",
    504: "Every attempt of the plan timed out",
}

_CHAT = ("post", "/v1/chat/completions")
#: Where a route answers a status for reasons of its own.
_ROUTE_STATUS_TEXT: dict[tuple[str, str, int], str] = {
    (*_CHAT, 409): "The first request with this Idempotency-Key is still in flight "
    "(`idempotency_in_flight`: retry after `retry-after`), or its answer is not kept for replay "
    "(`idempotency_answer_not_stored`: a stream or a `no_log` policy; the error names the "
    "decision)",
    (*_CHAT, 422): _STATUS_TEXT[422] + ", or the Idempotency-Key was used for another request "
    "body within its window (`idempotency_key_reused`)",
}

# Every route that reads a key answers 401/403, and 503 when the key store is unreachable.
_KEYED = (401, 403, 500, 503)
_BODY = (400, 413)

ROUTE_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    # 404/422 (and 400/401/403/413) also when the provider refused the request or the caller's
    # own provider key; 429 when every attempt was rate limited.
    # 409/422 also for an Idempotency-Key in flight, not replayable, or reused.
    _CHAT: (*_BODY, *_KEYED, 404, 409, 422, 429, 502, 504),
    ("get", "/v1/models"): _KEYED,
    ("get", "/v1/models/{model_id}"): (*_KEYED, 404),
    ("post", "/x/rank"): (*_BODY, *_KEYED, 422),
    ("get", "/x/decisions/{decision_id}"): (400, *_KEYED, 404),
    ("get", "/x/decisions/{decision_id}/proof"): (400, *_KEYED, 404, 409),
    ("get", "/x/decisions"): (400, *_KEYED),
    ("get", "/x/sequences/{tenant}"): (400, *_KEYED, 404, 409),
    ("get", "/x/checkpoints/latest"): (*_KEYED, 404),
    ("get", "/x/checkpoint"): (*_KEYED, 404),
    ("post", "/x/replay"): (*_BODY, *_KEYED, 404),
    # 503 in its own shape (which check failed), declared by the route itself.
    ("get", "/readyz"): (500, 503),
}
"""The statuses each route answers besides its success, by (method, path template); a route not
listed answers 500 only when something breaks."""

_SUCCESS_TYPES: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", "/v1/chat/completions"): ("application/json", "text/event-stream"),
    ("get", "/metrics"): ("text/plain",),
    ("get", "/x/schema/sigma-pol-v1.json"): ("application/schema+json",),
}
"""The media types of a 200 that is not (only) JSON."""


def policy_components(max_depth: int | None = None) -> dict[str, Any]:
    """The policy's schema and its definitions as OpenAPI components (`max_depth`: see
    `policy_json_schema`)."""
    template = POLICY_REF + "_{name}"
    schema = policy_json_schema(ref_template=template, max_depth=max_depth)
    defs = schema.pop("$defs")
    # Inside an OpenAPI document the schema is not a resource of its own: no $id (it would move
    # the base of its references) and no $schema; the served copy keeps both.
    schema.pop("$id")
    schema.pop("$schema")
    schema["description"] += f" Served on its own at {POLICY_SCHEMA_PATH}."
    return {
        _POLICY_COMPONENT: schema,
        **{f"{_POLICY_COMPONENT}_{name}": value for name, value in defs.items()},
    }


def _error_response(method: str, path: str, status: int) -> dict[str, Any]:
    return {
        "description": _ROUTE_STATUS_TEXT.get((method, path, status), _STATUS_TEXT[status]),
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{_ERROR_COMPONENT}"}}
        },
    }


def _complete(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    # FastAPI's own validation error shape is never answered (see the module's docstring).
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components[_ERROR_COMPONENT] = _ERROR_SCHEMA
    components.update(policy_components())
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            types = _SUCCESS_TYPES.get((method, path))
            if types is not None and "200" in responses:
                responses["200"]["content"] = {media: {"schema": {}} for media in types}
            statuses = ROUTE_STATUSES.get((method, path), (500,))
            if operation.get("parameters"):
                statuses = tuple(sorted({400, *statuses}))
            for status in sorted(statuses):
                # A status the route declares itself keeps its own description and shape.
                responses.setdefault(str(status), _error_response(method, path, status))
            operation["responses"] = dict(sorted(responses.items()))
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at `app.openapi_url` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way
