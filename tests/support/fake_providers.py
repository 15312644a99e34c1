"""Real HTTP servers on 127.0.0.1 speaking OpenAI Chat Completions and Anthropic Messages.

Each `FakeProvider` runs an asyncio HTTP/1.1 server (h11) on a random free port in a background
thread, so it serves sync and async clients alike, from pytest or a plain script. It records every
request (headers, body) and follows a script of `Reply`s and `Fault`s per model (or for every
model with `"*"`): status codes, hangs past the client's timeout, dropped connections, garbage
JSON, truncated or stalled streams, in-stream errors.

    with FakeProvider("openai", api_key="sk-test") as fake:
        fake.script("gpt-x", Fault(status=429), Reply(text="hi"))
        ... fake.base_url ... fake.requests[-1].headers["authorization"]

From a shell: `python -m tests.support.fake_providers openai` prints the base URL and serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import h11
import pytest

from tests.support.fake_wire import (
    Fault,
    Reply,
    Step,
    ToolCall,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
    openai_completion,
    openai_error,
    openai_stream,
    sse,
)

Protocol = Literal["openai", "anthropic"]
FAKE_OPENAI_KEY = "sk-fake-openai-3f9c2b7e41d04a6b"
FAKE_ANTHROPIC_KEY = "sk-ant-fake-8d1e5a0c97b24f36"
ANTHROPIC_VERSION = "2023-06-01"

__all__ = [
    "FAKE_ANTHROPIC_KEY",
    "FAKE_OPENAI_KEY",
    "FakeProvider",
    "Fault",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "fake_anthropic",
    "fake_openai",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _AbortError(Exception):
    """Close the connection now, without finishing the response."""


class FakeProvider:
    """A loopback server speaking `protocol`; requires `api_key` when one is given."""

    def __init__(self, protocol: Protocol, *, api_key: str | None = None, port: int = 0) -> None:
        self.protocol = protocol
        self.api_key = api_key
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Step]] = defaultdict(deque)
        self._always: dict[str, Step] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- control (any thread) ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The base URL as each SDK expects it (`…/v1` for OpenAI, bare for Anthropic)."""
        root = f"http://127.0.0.1:{self.port}"
        return f"{root}/v1" if self.protocol == "openai" else root

    def script(self, model: str, *steps: Step) -> None:
        """Queue steps for the next calls to `model` (`"*"`: any model); then normal replies."""
        with self._lock:
            self._scripts[model].extend(steps)

    def always(self, model: str, step: Step) -> None:
        """Answer every call to `model` (`"*"`: any model) with `step`, after any queued steps."""
        with self._lock:
            self._always[model] = step

    def reset(self) -> None:
        """Forget scripts and recorded requests."""
        with self._lock:
            self._scripts.clear()
            self._always.clear()
            self.requests.clear()

    def _next_step(self, model: str) -> Step:
        with self._lock:
            for key in (model, "*"):
                if self._scripts[key]:
                    return self._scripts[key].popleft()
            return self._always.get(model) or self._always.get("*") or Reply()

    def start(self) -> Self:
        """Start serving in a background thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self._run, name=f"fake-{self.protocol}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._server is None:
            raise RuntimeError(f"fake {self.protocol} server failed to start")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (open connections are closed)."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join()
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- server (its own thread and loop) ------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        finally:
            if self._server is not None:
                self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
        async with self._server:
            await self._stopping.wait()
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(conn, reader)
                if request is None:
                    break
                await self._respond(conn, reader, writer, request)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (_AbortError, ConnectionError, h11.ProtocolError, asyncio.CancelledError):
            writer.transport.abort()
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> RecordedRequest | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                headers = {k.decode().lower(): v.decode() for k, v in head.headers}
                recorded = RecordedRequest(
                    head.method.decode(), head.target.decode(), headers, bytes(body)
                )
                with self._lock:
                    self.requests.append(recorded)
                return recorded
            else:  # ConnectionClosed or PAUSED
                return None

    async def _until_client_leaves(self, reader: asyncio.StreamReader) -> None:
        assert self._stopping is not None
        left = asyncio.ensure_future(reader.read())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({left, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for future in (left, stopping):
            future.cancel()
        raise _AbortError

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        headers: dict[str, str],
        body: bytes | None,
    ) -> None:
        pairs = [(k, v) for k, v in headers.items()]
        if body is not None:
            pairs.append(("content-length", str(len(body))))
        writer.write(conn.send(h11.Response(status_code=status, headers=pairs)))
        if body is not None:
            writer.write(conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()

    async def _respond(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: RecordedRequest,
    ) -> None:
        json_headers = {"content-type": "application/json"}
        refusal = self._refusal(request)
        if refusal is not None:
            status, error = refusal
            await self._send(conn, writer, status, json_headers, json.dumps(error).encode())
            return
        body = request.json()
        step = self._next_step(str(body["model"]))
        fault = step if isinstance(step, Fault) else Fault()
        reply = step if isinstance(step, Reply) else Reply()
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.drop:
            raise _AbortError
        if fault.hang:
            await self._until_client_leaves(reader)
        if fault.status is not None:
            error = self._error(fault.status, "scripted failure")
            headers = {**json_headers, **fault.headers}
            await self._send(conn, writer, fault.status, headers, json.dumps(error).encode())
            return
        if not body.get("stream"):
            if fault.garbage:
                payload = b'{"id": "chatcmpl-trunc", "choices": [{"index": 0, "mess'
            elif self.protocol == "openai":
                payload = json.dumps(openai_completion(body, reply)).encode()
            else:
                payload = json.dumps(anthropic_message(body, reply)).encode()
            await self._send(conn, writer, 200, json_headers, payload)
            return
        await self._send(conn, writer, 200, {"content-type": "text/event-stream"}, None)
        events = (
            openai_stream(body, reply)
            if self.protocol == "openai"
            else anthropic_stream(body, reply)
        )
        for count, event in enumerate(self._faulty(events, fault)):
            if fault.cut_after is not None and count == fault.cut_after:
                raise _AbortError
            if fault.stall_after is not None and count == fault.stall_after:
                await self._until_client_leaves(reader)
            writer.write(conn.send(h11.Data(data=event)))
            await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()

    def _faulty(self, events: Iterable[bytes], fault: Fault) -> Iterator[bytes]:
        for count, event in enumerate(events):
            yield event
            if count == 0 and fault.garbage:
                yield b'data: {"id": "chatcmpl-trunc", "choi\n\n'
            if count == 0 and fault.stream_error is not None:
                if self.protocol == "anthropic":
                    error = anthropic_error(500, "scripted stream error", fault.stream_error)
                    yield sse(error, "error")
                else:
                    yield sse({"error": {"message": "scripted", "type": fault.stream_error}})
                return

    def _error(self, status: int, message: str) -> dict[str, Any]:
        if self.protocol == "openai":
            return openai_error(status, message)
        return anthropic_error(status, message)

    def _refusal(self, request: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        """What the real service refuses before looking at the model: auth, headers, shape."""
        expected_path = "/v1/chat/completions" if self.protocol == "openai" else "/v1/messages"
        if request.method != "POST" or request.path != expected_path:
            return 404, self._error(404, f"no route {request.method} {request.path}")
        if self.api_key is not None:
            if self.protocol == "openai":
                given = request.headers.get("authorization", "").removeprefix("Bearer ")
            else:  # the Messages API takes `x-api-key`; newer SDKs send a bearer token instead
                bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
                given = request.headers.get("x-api-key", bearer)
            if given != self.api_key:
                masked = f"{given[:3]}***{given[-4:]}" if len(given) > 8 else "***"
                return 401, self._error(401, f"Incorrect API key provided: {masked}")
        if self.protocol == "anthropic" and "anthropic-version" not in request.headers:
            return 400, self._error(400, "anthropic-version: header is required")
        try:
            body = request.json()
        except ValueError:
            return 400, self._error(400, "We could not parse the JSON body of your request.")
        required = ("model", "messages") + (("max_tokens",) if self.protocol == "anthropic" else ())
        missing = [f for f in required if not isinstance(body, dict) or f not in body]
        if missing:
            return 400, self._error(400, f"{missing[0]}: Field required")
        if self.protocol == "anthropic":
            for i, message in enumerate(body["messages"]):
                if message.get("role") not in ("user", "assistant"):
                    return 400, self._error(
                        400, f"messages.{i}.role: Input should be user or assistant"
                    )
        return None


@pytest.fixture
def fake_openai() -> Iterator[FakeProvider]:
    """An OpenAI-compatible server on loopback that requires `FAKE_OPENAI_KEY`."""
    with FakeProvider("openai", api_key=FAKE_OPENAI_KEY) as server:
        yield server


@pytest.fixture
def fake_anthropic() -> Iterator[FakeProvider]:
    """An Anthropic Messages server on loopback that requires `FAKE_ANTHROPIC_KEY`."""
    with FakeProvider("anthropic", api_key=FAKE_ANTHROPIC_KEY) as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol", choices=["openai", "anthropic"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    server = FakeProvider(args.protocol, api_key=args.api_key, port=args.port).start()
    print(server.base_url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    server.stop()


if __name__ == "__main__":
    main()
