"""Schemathesis against the running gateway's own `/openapi.json`: requests generated from the
document (valid ones and, in its coverage phase, invalid ones) to every operation — never a 5xx,
every status and body as the document says, every error in OpenAI's shape. Bounded and
derandomized so that it stays a fast, repeatable part of the suite."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway._harness import Gateway
from unhardcoded.app._openapi import policy_components
from unhardcoded.app._reference import openapi_schema

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway answering every attempt with the echo provider (a valid policy gets a 200)."""
    with Gateway(tmp_path_factory.mktemp("schemathesis"), {}, echo_all=True) as gateway:
        yield gateway


DOCUMENT = openapi_schema()


def _generable(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the policy's nesting bounded in the schema itself (schemathesis's
    generator does not terminate on the recursive expression schema)."""
    bounded = copy.deepcopy(document)
    schemas = bounded["components"]["schemas"]
    for name in [n for n in schemas if n.startswith("sigma_pol_v1")]:
        del schemas[name]
    schemas.update(policy_components(max_depth=2))
    return bounded


schema = schemathesis.openapi.from_dict(_generable(DOCUMENT))


def test_the_server_serves_this_document(served: Gateway) -> None:
    assert httpx.get(f"{served.root}/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: Any, served: Gateway) -> None:
    response = case.call(base_url=served.root, headers=served.auth("admin"), timeout=30)
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) >= {"message", "type", "param", "code"}


def test_the_server_still_serves(served: Gateway) -> None:
    assert httpx.get(f"{served.root}/healthz").status_code == 200
