"""`catalog sync` against a real HTTP server on loopback serving the real LiteLLM price maps (and
the OpenRouter listing), publishing into a real ledger: a new version only when the content
changed, nothing published when the fetch fails."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from router.core import Catalog
from router.services.catalogs import (
    CatalogFetchError,
    Published,
    import_litellm_document,
    sync_catalog,
)
from router.services.catalogs._imports import Source
from tests.catalogs.support import OPENROUTER
from tests.catalogs.test_real_litellm import real_bytes
from tests.support.service_backends import Backend, backend
from unhardcoded.cli import main

__all__ = ["backend"]

AS_OF = dt.date(2026, 12, 7)


class Files:
    """What the loopback server serves: path → (status, body); changed by the tests."""

    def __init__(self) -> None:
        self.served: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Files]]:
    files = Files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            files.requests.append(self.path)
            status, body = files.served.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


async def test_sync_publishes_only_when_the_source_changed(
    server: tuple[str, Files], backend: Backend
) -> None:
    base, files = server
    url = f"{base}/mirror/model_prices_and_context_window.json"
    files.served["/mirror/model_prices_and_context_window.json"] = (200, real_bytes("1.80.0"))
    async with backend.service() as service:

        async def publish(catalog: Catalog) -> Published:
            done = await service.publish_catalog(catalog)
            return Published(done.version, done.created)

        first = await sync_catalog("litellm", publish, as_of=AS_OF, url=url)
        again = await sync_catalog("litellm", publish, as_of=AS_OF, url=url)
        files.served["/mirror/model_prices_and_context_window.json"] = (200, real_bytes("1.110.2"))
        changed = await sync_catalog("litellm", publish, as_of=AS_OF, url=url)
        versions = [v.version for v in await service.catalogs()]

    assert first.published.created
    assert not again.published.created
    assert again.published.version == first.published.version
    assert changed.published.created
    assert changed.published.version != first.published.version
    assert versions == [first.published.version, changed.published.version]
    assert len(files.requests) == 3
    # the published catalog is exactly the import of the same bytes from a file
    direct = import_litellm_document(
        json.loads(real_bytes("1.110.2")),
        Source.of_bytes("litellm", "model_prices_and_context_window.json", real_bytes("1.110.2")),
        as_of=AS_OF,
    ).catalog
    assert changed.published.version == direct.version
    assert changed.health.to_json()["counts"]["unpriced"] > 0


async def test_a_failed_fetch_publishes_nothing(
    server: tuple[str, Files], backend: Backend
) -> None:
    base, files = server
    files.served["/prices.json"] = (503, b"busy")
    published: list[Catalog] = []

    async def publish(catalog: Catalog) -> Published:
        published.append(catalog)
        return Published(catalog.version, True)

    with pytest.raises(CatalogFetchError, match="HTTP 503"):
        await sync_catalog("litellm", publish, as_of=AS_OF, url=f"{base}/prices.json")
    with pytest.raises(CatalogFetchError, match="Cannot connect"):
        await sync_catalog("litellm", publish, as_of=AS_OF, url="http://127.0.0.1:9/prices.json")
    assert published == []


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_the_sync_command_publishes_and_then_reports_unchanged(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    base, files = server
    files.served["/api/v1/models"] = (200, OPENROUTER.read_bytes())
    db = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    args = ["catalog", "sync", "openrouter", "--url", f"{base}/api/v1/models", "--db", db]
    args += ["--home", str(tmp_path / "home"), "--as-of", "2026-12-07"]
    args += ["--zdr-url", "off", "--eu-url", "off"]  # the listing alone (test_sync_openrouter.py)
    first = cli(*args, "--json")
    assert first.exit_code == 0, first.output
    outcome = json.loads(first.stdout)
    assert outcome["created"] is True
    assert outcome["entries"] == 11
    second = cli(*args)
    assert second.exit_code == 0, second.output
    assert f"unchanged, already at {outcome['version']}" in second.stdout
    listed = cli("catalog", "list", "--db", db, "--home", str(tmp_path / "home"))
    assert listed.stdout.count(outcome["version"]) == 1


def test_the_sync_command_reports_a_failed_fetch_without_a_traceback(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    base, _ = server
    db = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    result = cli(
        "catalog", "sync", "litellm", "--url", f"{base}/missing.json", "--db", db,
        "--home", str(tmp_path / "home"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"cannot fetch {base}/missing.json: HTTP 404" in result.stderr
    assert "Traceback" not in result.output
