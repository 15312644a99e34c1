"""A gateway served by uvicorn on a loopback port in a background thread, with a real SQLite
file, a test catalog whose providers are the loopback fakes, and API keys for two tenants."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn
from fastapi import FastAPI

from router.services.gateway import KeyStore
from unhardcoded.app import create_app
from unhardcoded.db import create_engine, upgrade
from unhardcoded.settings import Settings

OPENAI_PROVIDER = "fakeoai"
ANTHROPIC_PROVIDER = "fakeant"

TEST_CATALOG: dict[str, Any] = {
    "name": "gateway-test",
    "entries": [
        {
            "id": "fakeoai/gpt-cheap@eu",
            "model": "gpt-cheap",
            "provider": OPENAI_PROVIDER,
            "region": "eu",
            "price_in": 0.1,
            "price_out": 0.2,
            "no_log": True,
            "status": "active",
        },
        {
            "id": "fakeant/claude-mid@eu",
            "model": "claude-mid",
            "provider": ANTHROPIC_PROVIDER,
            "region": "eu",
            "price_in": 1.0,
            "price_out": 2.0,
            "no_log": True,
            "status": "active",
        },
        {
            "id": "fakeoai/gpt-pricey@us",
            "model": "gpt-pricey",
            "provider": OPENAI_PROVIDER,
            "region": "us",
            "price_in": 5.0,
            "price_out": 10.0,
            "no_log": False,
            "status": "active",
        },
    ],
}

#: Cheapest first: gpt-cheap, then claude-mid (both EU); at most 2 attempts.
EU_POLICY: dict[str, Any] = {
    "v": "sigma-pol/v1",
    "rules": [{"id": "residency.eu", "when": ["eq", "region", "eu"]}],
    "rank": [["asc", "cost_per_run"]],
    "fallback": {"max_attempts": 2},
}

NO_LOG_POLICY: dict[str, Any] = {
    "v": "sigma-pol/v1",
    "rules": [{"id": "privacy.no_log", "when": ["is", "no_log"]}],
    "rank": [["asc", "cost_per_run"]],
    "fallback": {"max_attempts": 2},
}


def provider_env(
    openai_url: str, openai_key: str, anthropic_url: str, anthropic_key: str
) -> dict[str, str]:
    """Provider settings pointing the catalog's providers at the fakes."""
    return {
        "UNHARDCODED_PROVIDER_FAKEOAI_BASE_URL": openai_url,
        # The catalog's entries are in eu and us: each region needs an endpoint known to be there.
        "UNHARDCODED_PROVIDER_FAKEOAI_BASE_URL_EU": openai_url,
        "UNHARDCODED_PROVIDER_FAKEOAI_REGION": "us",
        "UNHARDCODED_PROVIDER_FAKEOAI_API_KEY": openai_key,
        "UNHARDCODED_PROVIDER_FAKEOAI_TIMEOUT": "2",
        "UNHARDCODED_PROVIDER_FAKEANT_KIND": "anthropic",
        "UNHARDCODED_PROVIDER_FAKEANT_BASE_URL": anthropic_url,
        "UNHARDCODED_PROVIDER_FAKEANT_REGION": "eu",
        "UNHARDCODED_PROVIDER_FAKEANT_API_KEY": anthropic_key,
        "UNHARDCODED_PROVIDER_FAKEANT_TIMEOUT": "2",
    }


async def _create_keys(url: str) -> dict[str, str]:
    await upgrade(url)
    engine = create_engine(url)
    try:
        keys = KeyStore(engine)
        made = {
            "acme": await keys.create("acme", ["route", "read:own"]),
            "globex": await keys.create("globex", ["route", "read:own"]),
            "auditor": await keys.create("audit", ["read:all"]),
            "reader": await keys.create("acme", ["read:own"]),
            "admin": await keys.create("ops", ["admin"]),
        }
        return {name: created.secret for name, created in made.items()}
    finally:
        await engine.dispose()


@dataclass
class Gateway:
    """A running gateway: `base_url` (…/v1 for the openai SDK), `root`, keys by name."""

    tmp: Path
    environ: dict[str, str]
    echo_all: bool = False
    max_body_bytes: int = 64 * 1024
    store_request_bodies: bool = False
    idempotency_window_s: float = 24 * 3600.0
    idempotency_wait_s: float = 10.0
    #: Another database than the SQLite file in `tmp` (e.g. PostgreSQL), as an async URL.
    database_url: str | None = None
    catalog: dict[str, Any] = field(default_factory=lambda: TEST_CATALOG)
    keys: dict[str, str] = field(default_factory=dict)
    app: FastAPI | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    port: int = 0

    @property
    def db_file(self) -> Path:
        """The SQLite file of the ledger."""
        return self.tmp / "gateway.db"

    @property
    def db_url(self) -> str:
        """Its URL (`database_url` when given)."""
        return self.database_url or f"sqlite+aiosqlite:///{self.db_file}"

    @property
    def root(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What the openai SDK takes as `base_url`."""
        return f"{self.root}/v1"

    def start(self) -> Self:
        """Migrate, create keys, bind the socket, serve in a thread (requests queue until the
        lifespan finished starting, so no waiting is needed)."""
        catalog_file = self.tmp / "catalog.json"
        catalog_file.write_text(json.dumps(self.catalog))
        self.keys = asyncio.run(_create_keys(self.db_url))
        settings = Settings(
            database_url=self.db_url,
            home=self.tmp / "home",
            catalog=catalog_file,
            echo_all=self.echo_all,
            max_body_bytes=self.max_body_bytes,
            store_request_bodies=self.store_request_bodies,
            idempotency_window_s=self.idempotency_window_s,
            idempotency_wait_s=self.idempotency_wait_s,
            key_cache_ttl_s=0,
        )
        self.app = create_app(settings, environ=self.environ)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(512)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="on", log_config=None
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down and join."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def auth(self, name: str = "acme") -> dict[str, str]:
        """The Authorization header of a named key."""
        return {"authorization": f"Bearer {self.keys[name]}"}
