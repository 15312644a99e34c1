"""`GET /v1/models` with the official SDK, and the policy's JSON Schema served and referenced."""

from __future__ import annotations

import httpx
import openai
import pytest

from router.core import POLICY_SCHEMA_PATH, Catalog, policy_json_schema
from tests.gateway._harness import TEST_CATALOG, Gateway
from unhardcoded.app._models import routable_entries


def client(gateway: Gateway, key: str = "acme") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.keys[key], max_retries=0)


def test_the_sdk_lists_every_routable_catalog_entry(gateway: Gateway) -> None:
    models = client(gateway).models.list()
    assert [m.id for m in models.data] == sorted(e["id"] for e in TEST_CATALOG["entries"])
    first = models.data[0]
    assert first.object == "model"
    assert first.owned_by == "fakeant"
    assert first.created == 0
    assert first.model_extra is not None
    assert first.model_extra["model"] == "claude-mid"
    assert first.model_extra["region"] == "eu"


def test_the_sdk_retrieves_one_model_whose_id_holds_a_slash(gateway: Gateway) -> None:
    model = client(gateway).models.retrieve("fakeoai/gpt-cheap@eu")
    assert (model.id, model.owned_by) == ("fakeoai/gpt-cheap@eu", "fakeoai")
    with pytest.raises(openai.NotFoundError) as raised:
        client(gateway).models.retrieve("fakeoai/nope")
    assert raised.value.body["code"] == "not_found"  # type: ignore[index]


def test_listing_models_needs_a_key_that_may_route(gateway: Gateway) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        client(gateway, "reader").models.list()
    assert httpx.get(f"{gateway.base_url}/models").status_code == 401


def test_only_entries_the_built_in_rules_let_through_are_listed() -> None:
    entries = [dict(e) for e in TEST_CATALOG["entries"]]
    entries[0]["status"] = "deprecated"
    del entries[1]["status"]
    catalog = Catalog.from_json({**TEST_CATALOG, "entries": entries})
    assert [e.id for e in routable_entries(catalog)] == ["fakeoai/gpt-pricey@us"]
    for entry in entries:
        entry["status"] = "retired"
    assert routable_entries(Catalog.from_json({**TEST_CATALOG, "entries": entries})) == []


def test_the_policy_schema_is_served_without_a_key(gateway: Gateway) -> None:
    response = httpx.get(gateway.root + POLICY_SCHEMA_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    assert response.json() == policy_json_schema()
    assert response.json()["$id"] == POLICY_SCHEMA_PATH


def test_the_openapi_policy_fields_reference_the_schema(gateway: Gateway) -> None:
    document = httpx.get(f"{gateway.root}/openapi.json").json()
    components = document["components"]["schemas"]
    for path in ("/v1/chat/completions", "/x/rank"):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        policy = body["schema"]["properties"]["policy"]
        assert policy["$ref"] == "#/components/schemas/sigma_pol_v1"
    policy_schema = components["sigma_pol_v1"]
    assert "$id" not in policy_schema
    assert "$defs" not in policy_schema
    assert policy_schema["properties"]["rules"]["items"]["anyOf"][0] == {
        "$ref": "#/components/schemas/sigma_pol_v1_rule"
    }
    assert httpx.get(f"{gateway.root}/redoc").status_code == 404
