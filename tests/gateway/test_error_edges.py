"""Client input never makes a 5xx, an error never breaks the connection, a client that goes away
is not an error: query parameters typed by the framework, undecodable input never echoed, a 500
in OpenAI's shape on a connection that stays usable."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.gateway._harness import EU_POLICY, Gateway
from tests.gateway.conftest import Captured
from unhardcoded.app._errors import install_error_handlers


def strict_json(response: httpx.Response) -> dict[str, object]:
    """The body, decoded as strict UTF-8 JSON (what a client in any language can read)."""
    body = json.loads(response.content.decode("utf-8", errors="strict"))
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("cursor", ["²", "١٢", str(2**63), str(10**30), "-1", "1e3", "0x10"])
def test_a_malformed_cursor_is_a_400_naming_it(gateway: Gateway, cursor: str) -> None:
    response = httpx.get(
        f"{gateway.root}/x/decisions", params={"cursor": cursor}, headers=gateway.auth()
    )
    assert response.status_code == 400, response.text
    error = strict_json(response)["error"]
    assert isinstance(error, dict)
    assert error["param"] == "/cursor"


def test_the_largest_cursor_is_a_page(gateway: Gateway) -> None:
    response = httpx.get(
        f"{gateway.root}/x/decisions", params={"cursor": str(2**63 - 1)}, headers=gateway.auth()
    )
    assert response.status_code == 200
    page = response.json()
    assert page["data"] == []
    assert page["next_cursor"] is None
    # A tenant's page past every decision still proves it: nothing after the largest cursor.
    assert page["completeness"]["after_position"] == 2**63 - 1
    assert page["completeness"]["last_version"] < page["completeness"]["first_version"]


LONE_SURROGATE_BODIES = [
    b'{"model": "x", "messages": [{"role": "user", "content": "hi"}], "policy": '
    b'{"v": "sigma-pol/v1", "rules": [["eq", "region", "\\ud800"]]}}',
    b'{"model": "x", "messages": [{"role": "user", "content": "hi"}], "policy": '
    b'{"v": "sigma-pol/v1", "rules": [], "\\udcff": 1}}',
    b'{"model": "x", "messages": [{"role": "user", "content": "hi"}], "policy": '
    b'{"v": "\\ud800", "rules": []}}',
    b'{"model": "x", "messages": [], "\\ud800": 1, "policy": {"v": "sigma-pol/v1", "rules": []}}',
]


@pytest.mark.parametrize("body", LONE_SURROGATE_BODIES)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/x/rank"])
def test_a_lone_surrogate_is_never_echoed_undecodably(
    gateway: Gateway, body: bytes, path: str
) -> None:
    if path == "/x/rank":
        body = body.replace(b'"model": "x", ', b"").replace(b'"messages": [], ', b"")
        body = body.replace(b'"messages": [{"role": "user", "content": "hi"}], ', b"")
    response = httpx.post(
        gateway.root + path,
        content=body,
        headers={**gateway.auth(), "content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500, response.text
    error = strict_json(response)["error"]
    assert isinstance(error, dict)
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["param"] is None or str(error["param"]).startswith("/")


@pytest.fixture
def failing_server() -> Iterator[str]:
    """A FastAPI app with the gateway's error handling, one route that fails unexpectedly."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/fine")
    async def fine() -> dict[str, str]:
        return {"status": "ok"}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(app, log_level="critical", access_log=False, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_500_is_the_openai_shape_and_the_connection_stays_usable(
    failing_server: str, captured_logs: Captured
) -> None:
    with httpx.Client(base_url=failing_server) as http:
        failed = http.get("/boom")
        after = http.get("/fine")
        # The same connection carried both requests.
        ports = {
            r.extensions["network_stream"].get_extra_info("socket").getsockname()[1]
            for r in (failed, after)
        }
    assert failed.status_code == 500
    assert strict_json(failed) == {
        "error": {
            "message": "internal server error",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert failed.headers.get("connection") != "close"
    assert after.status_code == 200
    assert len(ports) == 1
    assert any('"unexpected error: RuntimeError"' in line for line in captured_logs.lines)


class _Waiter(logging.Handler):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment
        self.seen = threading.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.fragment in record.getMessage():
            self.seen.set()


def test_a_client_that_goes_away_is_logged_at_info_without_a_traceback(gateway: Gateway) -> None:
    waiter = _Waiter("went away")
    logger = logging.getLogger("unhardcoded")
    old = logger.level
    logger.addHandler(waiter)
    logger.setLevel(logging.DEBUG)
    try:
        body = json.dumps({"messages": [], "policy": EU_POLICY}).encode()
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
            f"authorization: Bearer {gateway.keys['acme']}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body) + 100}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
            sock.sendall(head + body)  # 100 bytes short: the server waits for them
        assert waiter.seen.wait(timeout=30)
    finally:
        logger.removeHandler(waiter)
        logger.setLevel(old)
    gone = [r for r in waiter.records if "went away" in r.getMessage()]
    assert [r.levelno for r in gone] == [logging.INFO]
    assert all(r.levelno < logging.ERROR for r in waiter.records)
    assert all(r.exc_info is None for r in waiter.records)


# -- what the OpenAI API accepts is accepted; duplicate keys are refused where they are --------

HI = '"messages": [{"role": "user", "content": "hi"}]'


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ('"seed": 9007199254740993', {"seed": 2**53 + 1}),
        ('"seed": -9223372036854775808', {"seed": -(2**63)}),
        ('"temperature": 1e999', {"temperature": float("inf")}),
        ('"user": "\\ud800"', {"user": "\ud800"}),
    ],
)
def test_valid_json_beyond_i_json_is_routed_and_digested(
    gateway: Gateway, fragment: str, expected: dict[str, object]
) -> None:
    from router.core import extended_canonical_bytes

    body = f'{{"model": "x", {HI}, {fragment}, "policy": {json.dumps(EU_POLICY)}}}'
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=body.encode(),
        headers={**gateway.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    decision = httpx.get(
        f"{gateway.root}/x/decisions/{response.headers['x-decision-id']}", headers=gateway.auth()
    ).json()
    upstream = {"model": "x", "messages": [{"role": "user", "content": "hi"}], **expected}
    digest = hashlib.sha256(extended_canonical_bytes(upstream)).hexdigest()
    assert decision["request_digest"] == digest


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (f'{{{HI}, "policy": {{}}, "policy": {json.dumps(EU_POLICY)}}}', "/policy"),
        (
            f'{{{HI}, "policy": {{"v": "sigma-pol/v1", "rules": [{{"id": "a", "id": "b", '
            '"when": ["is", "no_log"]}]}}',
            "/policy/rules/0/id",
        ),
        ('{"messages": [{"role": "user", "role": "system"}], "policy": {}}', "/messages/0/role"),
    ],
)
def test_a_key_held_twice_is_refused_where_it_is(gateway: Gateway, body: str, pointer: str) -> None:
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=body.encode(),
        headers={**gateway.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    error = strict_json(response)["error"]
    assert error == {
        "message": f"{pointer}: a key appears twice in the same object",
        "type": "invalid_request_error",
        "param": pointer,
        "code": "duplicate_key",
    }


def test_max_tokens_beyond_a_double_is_a_400_with_its_pointer(gateway: Gateway) -> None:
    """Found by tests/fuzz_gateway.py: a 400-digit `max_tokens` overflowed float() (a 500)."""
    body = f'{{"model": "x", {HI}, "max_tokens": {"1" * 400}, "policy": {json.dumps(EU_POLICY)}}}'
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=body.encode(),
        headers={**gateway.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert strict_json(response)["error"]["param"] == "/max_tokens"


@pytest.mark.parametrize(
    "body",
    [
        # the duplicate closes its object before the syntax error is read (found by
        # tests/fuzz_gateway.py: a 500 until the whole text was parsed before answering)
        '{"messages": [{"role": "user", "role": "user"}], "policy": {"v": ',
        '{"policy": {"a": 1, "a": 2}, "messages": [}',
    ],
)
def test_a_key_held_twice_in_a_body_that_is_not_json_is_a_syntax_error(
    gateway: Gateway, body: str
) -> None:
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=body.encode(),
        headers={**gateway.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    error = strict_json(response)["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("the request body is not valid JSON: ")


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"messages": [], "policy": EU_POLICY}, "/messages"),
        ({"policy": EU_POLICY}, "/messages"),
        ([{"role": "user"}], ""),
    ],
)
def test_errors_about_the_body_point_at_it(gateway: Gateway, body: object, pointer: str) -> None:
    response = httpx.post(f"{gateway.base_url}/chat/completions", json=body, headers=gateway.auth())
    assert response.status_code == 400
    error = strict_json(response)["error"]
    assert isinstance(error, dict)
    assert (error["param"], error["code"]) == (pointer, "invalid_request")
