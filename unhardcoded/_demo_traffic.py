"""The demo's traffic: a real gateway on a loopback port and a client sending chat completions
through it, with the official `openai` package when it is installed, else plain httpx.

Nothing here routes, records or calls a provider: the served app does (`unhardcoded.app`)."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from router.services.gateway import KeyStore
from unhardcoded.app import create_app
from unhardcoded.db import create_engine, upgrade
from unhardcoded.settings import Settings

__all__ = ["DemoError", "Reply", "Sender", "create_keys", "pick_client", "serving"]

#: What the demo's users ask (the echo provider answers each with the question itself).
QUESTIONS = (
    "Summarise our refund policy in one sentence.",
    "Translate 'order shipped' into German.",
    "Draft a two-line apology for a late delivery.",
    "Which plan includes priority support?",
    "Extract the invoice number from: INV-2026-0042 due 30 days.",
)


class DemoError(RuntimeError):
    """A demo step did not produce what it should (the message names the step and why)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One answered request: who sent it, where it was routed, and the decision behind it."""

    tenant: str
    streamed: bool
    routed: str
    upstream: str
    decision_id: str
    text: str


def pick_client(requested: str) -> str:
    """`auto` → `openai` when the package is importable, else `httpx`."""
    if requested != "auto":
        if requested == "openai" and importlib.util.find_spec("openai") is None:
            raise DemoError("--client openai: the openai package is not installed")
        return requested
    return "openai" if importlib.util.find_spec("openai") is not None else "httpx"


async def _create_keys(url: str, tenants: tuple[str, ...]) -> dict[str, str]:
    await upgrade(url)
    engine = create_engine(url)
    try:
        keys = KeyStore(engine)
        out = {}
        for tenant in tenants:
            created = await keys.create(tenant, ["route", "read:own"], label="demo")
            out[tenant] = created.secret
        return out
    finally:
        await engine.dispose()


def create_keys(url: str, tenants: tuple[str, ...]) -> dict[str, str]:
    """One API key (scopes route + read:own) per tenant; returns tenant → key."""
    return asyncio.run(_create_keys(url, tenants))


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """Serve the app with uvicorn on a free loopback port in a thread; yields its root URL.

    The socket listens before the thread starts, so requests queue until the app's lifespan
    has opened the ledger: no waiting or polling is needed."""
    app = create_app(settings, environ={})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


def _headers_reply(
    tenant: str, streamed: bool, headers: Mapping[str, str], question: str, text: str
) -> Reply:
    for name in ("x-decision-id", "x-routed-model", "x-upstream"):
        if not headers.get(name):
            raise DemoError(f"the gateway's answer for tenant {tenant} has no {name} header")
    if question not in text:
        raise DemoError(
            f"the gateway's answer for tenant {tenant} does not echo the question: {text[:200]!r}"
        )
    return Reply(
        tenant,
        streamed,
        headers["x-routed-model"],
        headers["x-upstream"],
        headers["x-decision-id"],
        text,
    )


class Sender:
    """Sends chat completions for the demo's tenants through the gateway at `root`."""

    def __init__(self, root: str, keys: Mapping[str, str], client: str) -> None:
        self.root = root
        self.keys = dict(keys)
        self.client = client
        self._http = httpx.Client(base_url=root, timeout=60)
        self._openai: dict[str, Any] = {}

    def close(self) -> None:
        """Release the connections."""
        self._http.close()
        for client in self._openai.values():
            client.close()

    def _auth(self, tenant: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[tenant]}"}

    def send(self, tenant: str, policy: Any, question: str, stream: bool) -> Reply:
        """One chat completion (streamed or not) for `tenant` under `policy`."""
        messages = [{"role": "user", "content": question}]
        if self.client == "openai":
            return self._send_openai(tenant, policy, messages, stream)
        body = {"model": "auto", "messages": messages, "policy": policy, "stream": stream}
        if not stream:
            response = self._http.post(
                "/v1/chat/completions", json=body, headers=self._auth(tenant)
            )
            _raise_for(tenant, response)
            text = response.json()["choices"][0]["message"]["content"]
            return _headers_reply(tenant, False, response.headers, question, text)
        with self._http.stream(
            "POST", "/v1/chat/completions", json=body, headers=self._auth(tenant)
        ) as response:
            if response.status_code != 200:
                response.read()
                _raise_for(tenant, response)
            parts = []
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                for choice in chunk.get("choices", []):
                    parts.append(choice.get("delta", {}).get("content") or "")
            return _headers_reply(tenant, True, response.headers, question, "".join(parts))

    def _send_openai(
        self, tenant: str, policy: Any, messages: list[dict[str, str]], stream: bool
    ) -> Reply:
        # Imported by name: the package is optional (a dev dependency), and typed as Any here.
        openai: Any = importlib.import_module("openai")
        client = self._openai.get(tenant)
        if client is None:
            client = openai.OpenAI(
                base_url=f"{self.root}/v1", api_key=self.keys[tenant], max_retries=0, timeout=60
            )
            self._openai[tenant] = client
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="auto",
                messages=messages,
                stream=stream,
                extra_body={"policy": policy},
            )
        except openai.APIStatusError as exc:
            raise DemoError(
                f"the gateway refused a request of tenant {tenant}: HTTP {exc.status_code} "
                f"{exc.body}"
            ) from None
        if stream:
            text = "".join(
                choice.delta.content or "" for chunk in raw.parse() for choice in chunk.choices
            )
        else:
            text = raw.parse().choices[0].message.content or ""
        return _headers_reply(tenant, stream, raw.headers, messages[0]["content"], text)

    def refused(self, tenant: str, policy: Any) -> tuple[int, dict[str, Any]]:
        """Send a request the gateway must refuse; returns its status and OpenAI-shaped error."""
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "policy": policy}
        response = self._http.post("/v1/chat/completions", json=body, headers=self._auth(tenant))
        if response.status_code < 400:
            raise DemoError(f"the gateway accepted an invalid policy (HTTP {response.status_code})")
        error: dict[str, Any] = response.json()["error"]
        return response.status_code, error

    def read(self, tenant: str, path: str) -> dict[str, Any]:
        """GET a read-API path as `tenant`."""
        response = self._http.get(path, headers=self._auth(tenant))
        _raise_for(tenant, response)
        found: dict[str, Any] = response.json()
        return found


def _raise_for(tenant: str, response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise DemoError(
            f"the gateway answered HTTP {response.status_code} to tenant {tenant}: "
            f"{response.text[:500]}"
        )


def write_json(path: Path, document: Any) -> Path:
    """Write `document` as indented JSON (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
