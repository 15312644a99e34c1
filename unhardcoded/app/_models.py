"""OpenAI's model list over the catalog, and the policy's JSON Schema.

`GET /v1/models` is what SDKs, LangChain and IDE plugins call first: it lists the catalog entries
a request can be routed to (those the built-in `catalog.status` rule lets through), in OpenAI's
list shape, with the catalog's own attributes beside OpenAI's four fields.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from router.core import (
    POLICY_SCHEMA_PATH,
    POLICY_VERSION,
    Catalog,
    CatalogEntry,
    NoEntryPasses,
    Policy,
    RequestFeatures,
    evaluate,
    policy_json_schema,
)
from router.services.gateway import NotFoundError
from unhardcoded.app._routes import _principal, _services

__all__ = ["MODELS_PATH", "models_router", "routable_entries"]

MODELS_PATH = "/v1/models"
models_router = APIRouter()

_POLICY_SCHEMA = policy_json_schema()
# No rule of its own: what passes is what the built-in rules (catalog.status) let through.
_EVERY_ROUTABLE = Policy.from_json({"v": POLICY_VERSION, "rules": []})
_NO_TOKENS = RequestFeatures(tokens_in=0, tokens_out=0)


def routable_entries(catalog: Catalog) -> list[CatalogEntry]:
    """The entries a request can be routed to, by id: the evaluator's own answer for a policy
    without rules (so the built-in rules decide, as they do for every request)."""
    try:
        trace = evaluate(_EVERY_ROUTABLE, catalog, _NO_TOKENS)
    except NoEntryPasses:
        return []
    return sorted((catalog.entries[i] for i in trace.ranked), key=lambda e: e.id)


def _model(entry: CatalogEntry, catalog_version: str) -> dict[str, Any]:
    return {
        "id": entry.id,
        "object": "model",
        # A catalog does not say when a model was made: 0 says "unknown" in OpenAI's integer.
        "created": 0,
        "owned_by": entry.get("provider"),
        "model": entry.get("model"),
        "region": entry.get("region"),
        "catalog_version": catalog_version,
    }


async def _routable(request: Request) -> tuple[list[CatalogEntry], str]:
    await _principal(request, "route")
    catalog = await _services(request).gateway.catalog()
    return routable_entries(catalog), catalog.version


@models_router.get(MODELS_PATH, summary="The models a request can be routed to (OpenAI's list)")
async def list_models(request: Request) -> JSONResponse:
    """`{"object": "list", "data": [{"id", "object": "model", "created", "owned_by", …}]}`: the
    catalog entries whose status is active, by entry id (`owned_by` is the provider; `model`,
    `region` and `catalog_version` come from the catalog; `created` is 0, unknown). Any of them
    may be the routed model of a request, as the request's policy decides; `model` in a chat
    request is not what routes it. Needs the route scope."""
    entries, version = await _routable(request)
    return JSONResponse({"object": "list", "data": [_model(e, version) for e in entries]})


@models_router.get(MODELS_PATH + "/{model_id:path}", summary="One model a request can be routed to")
async def get_model(request: Request, model_id: str) -> JSONResponse:
    """The model object of one catalog entry (its id may hold `/`, sent as `%2F` by the SDKs);
    404 when the catalog has no active entry with that id."""
    entries, version = await _routable(request)
    for entry in entries:
        if entry.id == model_id:
            return JSONResponse(_model(entry, version))
    raise NotFoundError(f"no routable model {model_id[:200]!r} in the catalog")


@models_router.get(
    POLICY_SCHEMA_PATH,
    summary="The sigma-pol/v1 policy as a JSON Schema (draft 2020-12)",
    response_class=JSONResponse,
)
async def policy_schema() -> JSONResponse:
    """Generated from the policy validator's tables: generate types from it, or check a policy
    before sending it. The validator stays the authority for what a schema cannot say (attribute
    names and types, unique rule ids, nesting depth, node count). No key needed."""
    return JSONResponse(_POLICY_SCHEMA, media_type="application/schema+json")
