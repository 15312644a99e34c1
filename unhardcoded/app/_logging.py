"""Structured JSON logs: one line per request with the decision id — never keys, never bodies."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.services.gateway import Metrics

__all__ = ["AccessLog", "JsonFormatter", "configure_logging", "uvicorn_log_config"]

access_log = logging.getLogger("unhardcoded.access")

#: Extra fields a log record may carry into the JSON line (nothing else is copied).
_FIELDS = (
    "method",
    "route",
    "status",
    "latency_ms",
    "decision_id",
    "tenant",
    "key_id",
    "routed",
    "attempts",
    "error_class",
)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", …fields}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=False)


_PACKAGES = ("unhardcoded", "router", "ledger", "reports")
"""The logger trees of this project: the services log under `router.…` (a failed upstream
attempt, an attempt that could not be recorded), not under `unhardcoded.…`."""


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for every logger of this project (one handler per package tree), and
    for what reaches the root logger from other libraries (warnings and above) and Python's
    warnings, so that no plain-text line lands between the JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for package in _PACKAGES:
        tree = logging.getLogger(package)
        tree.handlers[:] = [handler]
        tree.setLevel(level)
        tree.propagate = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    if root.level == logging.NOTSET or root.level < logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.captureWarnings(True)


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's `log_config` (a `logging.config.dictConfig`): its own loggers write the same
    JSON lines as the project's. Given to uvicorn rather than applied here, because uvicorn
    applies it in every server process it starts."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["json"], "level": level, "propagate": False},
        },
    }


class AccessLog:
    """Pure ASGI middleware: logs each HTTP request and counts it in the metrics.

    Handlers put `decision_id`, `tenant`, `routed` … into `request.state` (the ASGI scope's
    `state`); only those and the route template are logged — no header, no query, no body.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self._done(scope, state, status, started)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _done(self, scope: Scope, state: dict[str, Any], status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        metrics = self.metrics
        metrics.labelled(metrics.requests, template, str(status)).inc()
        metrics.labelled(metrics.request_latency, template).observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 3),
                    **{k: state[k] for k in _FIELDS if k in state},
                },
            )
