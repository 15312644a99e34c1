"""Request shapes for the OpenAPI document at /docs (the handlers parse bodies themselves, so
that every malformed body gets the gateway's own precise error)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CHAT_BODY", "POLICY_REF", "RANK_BODY"]

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


#: The policy's JSON Schema, as `unhardcoded.app._openapi` places it among the components.
POLICY_REF = "#/components/schemas/sigma_pol_v1"


def _body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    policy = schema["properties"]["policy"]
    schema["properties"]["policy"] = {"$ref": POLICY_REF, "description": policy["description"]}
    return {
        "required": True,
        "content": {"application/json": {"schema": schema}},
    }


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
