"""`GatewayApp`: FastAPI, with `POST /v1/chat/completions` dispatched without its router stack.

Why: the hot route's handler takes the raw `Request` and shapes its own answers, so FastAPI's
layers around it (exception and exit-stack middlewares, route matching over every route,
dependency solving, the response passing through four `send` wrappers) did no work for it, yet
cost about a fifth of the gateway's CPU per request. Here the same handler runs under the same
access log, and its errors go through the same `translate`. Everything else — other routes, the
OpenAPI schema (which still documents the route), a `root_path`, FastAPI's native telemetry when
it is enabled — takes the ordinary FastAPI path, which serves this route identically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from unhardcoded.app._errors import translate
from unhardcoded.app._routes import CHAT_PATH, chat_completions, router

__all__ = ["GatewayApp"]


async def _serve_chat(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive, send)
    try:
        response = await chat_completions(request)
    except Exception as exc:
        status, body = translate(exc)
        response = JSONResponse(body, status_code=status)
    await response(scope, receive, send)


class GatewayApp(FastAPI):
    """The gateway's FastAPI app; call `serve_chat_directly(access_log)` once routes and
    middleware are in place to enable the direct path (`direct_chat = False` turns it off)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct_chat = False
        self._chat: ASGIApp | None = None
        self._chat_route: BaseRoute | None = None
        self._otel: bool | None = None

    def serve_chat_directly(self, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        """Serve the chat route through `wrap(handler)` (the access log) instead of the stack."""
        self._chat_route = next(r for r in router.routes if getattr(r, "path", None) == CHAT_PATH)
        self._chat = wrap(_serve_chat)
        self.direct_chat = True

    def _direct(self, scope: Scope) -> bool:
        if (
            not self.direct_chat
            or scope["type"] != "http"
            or scope["path"] != CHAT_PATH
            or scope["method"] != "POST"
            or self.root_path
            or scope.get("root_path")
        ):
            return False
        return not self._telemetry_enabled()

    def _telemetry_enabled(self) -> bool:
        # FastAPI's own telemetry wraps requests when an OpenTelemetry provider is set up: asked
        # once, at the first chat request (providers are set up before serving starts).
        if self._otel is None:
            telemetry = getattr(self, "_native_telemetry", None)
            self._otel = telemetry is not None and bool(telemetry.enabled())
        return self._otel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._direct(scope):
            assert self._chat is not None
            scope["app"] = self
            scope["route"] = self._chat_route
            await self._chat(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
