"""Fuzzing the HTTP surface with hypothesis: thousands of malformed requests and policies against
the running server — never a 5xx, always the OpenAI error shape, and the server keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway._harness import EU_POLICY, Gateway, provider_env
from tests.support.fake_providers import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, FakeProvider

FUZZ = settings(
    max_examples=350,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

ATTRS = ["region", "provider", "price_in", "no_log", "capabilities", "cost_per_run", "status", "x"]
OPS = ["eq", "in", "cmp", "is", "has", "not", "all", "any", "lt", "", "EQ"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(ATTRS + OPS + ["eu", "us", "asc", "desc", "ge", "gt", "sigma-pol/v1"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)
expressions = st.recursive(
    st.one_of(
        st.tuples(st.sampled_from(OPS), st.sampled_from(ATTRS), scalars).map(list),
        st.tuples(st.sampled_from(OPS), st.sampled_from(ATTRS)).map(list),
        st.tuples(
            st.just("cmp"), st.sampled_from(ATTRS), st.sampled_from(["ge", "lt", "zz"]), scalars
        ).map(list),
        json_values,
    ),
    lambda inner: st.tuples(st.sampled_from(["all", "any", "not"]), inner, inner).map(list),
    max_leaves=8,
)
policies = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.just("sigma-pol/v1"), scalars),
        "rules": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"when": expressions}, optional={"id": st.one_of(st.text(max_size=12), scalars)}
                ),
                max_size=4,
            ),
            json_values,
        ),
        "rank": st.one_of(
            st.lists(
                st.tuples(st.sampled_from(["asc", "desc", "up"]), st.sampled_from(ATTRS)).map(list),
                max_size=3,
            ),
            json_values,
        ),
        "tokens": st.one_of(st.fixed_dictionaries({"in": scalars, "out": scalars}), json_values),
        "fallback": st.one_of(st.fixed_dictionaries({"max_attempts": scalars}), json_values),
        "extra": json_values,
    },
)
messages = st.one_of(
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "system", "assistant", "x"])},
            optional={"content": st.one_of(st.text(max_size=30), json_values)},
        ),
        max_size=3,
    ),
    json_values,
)
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": scalars,
        "messages": messages,
        "policy": st.one_of(policies, st.just(EU_POLICY), json_values),
        "stream": st.one_of(st.booleans(), scalars),
        "max_tokens": scalars,
        "temperature": scalars,
    },
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, httpx.Client]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with (
        FakeProvider("openai", api_key=FAKE_OPENAI_KEY) as oai,
        FakeProvider("anthropic", api_key=FAKE_ANTHROPIC_KEY) as ant,
    ):
        env = provider_env(oai.base_url, FAKE_OPENAI_KEY, ant.base_url, FAKE_ANTHROPIC_KEY)
        with Gateway(tmp, env) as gateway, httpx.Client(base_url=gateway.root, timeout=30) as http:
            yield gateway, http
            assert http.get("/healthz").json()["status"] == "ok"


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) >= {"message", "type", "param", "code"}
        assert error["param"] is None or error["param"] == "" or error["param"].startswith("/")


@FUZZ
@given(body=chat_bodies)
def test_chat_completions_never_5xx(served: tuple[Gateway, httpx.Client], body: Any) -> None:
    gateway, http = served
    with http.stream("POST", "/v1/chat/completions", headers=gateway.auth(), json=body) as response:
        response.read()
    check(response)


@FUZZ
@given(
    body=st.fixed_dictionaries(
        {}, optional={"policy": policies, "request": json_values, "record": scalars, "x": scalars}
    )
)
def test_rank_never_5xx(served: tuple[Gateway, httpx.Client], body: Any) -> None:
    gateway, http = served
    check(http.post("/x/rank", headers=gateway.auth(), json=body))


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_raw_bytes_never_5xx(served: tuple[Gateway, httpx.Client], raw: bytes) -> None:
    gateway, http = served
    check(http.post("/v1/chat/completions", headers=gateway.auth(), content=raw))
    check(http.post("/x/rank", headers=gateway.auth(), content=raw))


@settings(FUZZ, max_examples=200)
@given(
    auth=st.one_of(st.text(max_size=80), st.sampled_from(["Bearer x", "Bearer uhk_", "bearer x"])),
    path=st.sampled_from(["/x/decisions", "/x/decisions/", "/x/checkpoints/latest", "/healthz"]),
    ref=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"),
        max_size=40,
    ),
    query=st.dictionaries(
        st.sampled_from(["limit", "cursor", "tenant", "x"]), st.text(max_size=12), max_size=3
    ),
    provider=st.text(alphabet="abcXYZ_-!0", min_size=1, max_size=8),
)
def test_headers_ids_and_queries_never_5xx(
    served: tuple[Gateway, httpx.Client],
    auth: str,
    path: str,
    ref: str,
    query: dict[str, str],
    provider: str,
) -> None:
    gateway, http = served
    usable = auth.isascii() and auth.isprintable() and auth.strip() == auth and auth
    headers = {"authorization": auth} if usable else {}
    check(http.get(path + (ref if path.endswith("/") else ""), headers=headers, params=query))
    check(http.get(f"/x/decisions/{ref}", headers=gateway.auth("auditor"), params=query))
    check(http.get(f"/x/decisions/{ref}/proof", headers=gateway.auth(), params=query))
    check(http.get("/x/decisions", headers=gateway.auth(), params=query))
    check(
        http.post(
            "/v1/chat/completions",
            headers={**gateway.auth(), f"x-provider-key-{provider}": "k"},
            json={"messages": [], "policy": EU_POLICY},
        )
    )
