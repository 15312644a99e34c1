"""`unhardcoded serve` as an operator runs it: start-up failures are one line, every log line is
JSON, /healthz and /readyz, SIGTERM drains and exits 0, `--home`, and two server processes that
start on PostgreSQL every time."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.gateway._harness import EU_POLICY, TEST_CATALOG, provider_env

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "unhardcoded"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["UNHARDCODED_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(REPO)
    return {**env, **extra}


def _assert_one_error_line(stderr: str) -> str:
    """The only lines are notes, JSON log lines and exactly one `error:` line; returns it."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    for line in stderr.splitlines():
        assert line.startswith(("error: ", "note: ", "{")), stderr
    return errors[0]


def _deep_file(path: Path) -> Path:
    path.write_text("[" * 100_000 + "]" * 100_000)
    return path


def _start_failures(tmp_path: Path) -> list[tuple[list[str], str]]:
    text_db = tmp_path / "notes.db"
    text_db.write_text("not a database\n")
    shared_home = tmp_path / "shared-home"
    shared_home.mkdir()
    key = shared_home / "ledger-signing.key"
    keyed = _env(tmp_path, UNHARDCODED_HOME=str(shared_home))
    for command in (["db", "upgrade"], ["ledger", "checkpoint"]):  # the key comes with the ledger
        subprocess.run(
            [*CLI, *command, "--db", str(tmp_path / "k.db")],
            env=keyed,
            check=True,
            capture_output=True,
        )
    key.chmod(0o644)
    return [
        (["--db", "mysql://u@localhost/x"], "unsupported database URL scheme 'mysql'"),
        (["--db", str(tmp_path / "no-such-folder" / "x.db")], "no-such-folder does not exist"),
        (["--db", str(shared_home)], "unable to open database file"),  # a folder
        (["--db", str(text_db)], "file is not a database"),
        (["--db", "postgresql://postgres@127.0.0.1:1/nowhere"], "127.0.0.1"),
        (["--db", str(tmp_path / "k.db"), "--home", str(shared_home)], "chmod 600"),
        (["--catalog", str(_deep_file(tmp_path / "deep.json"))], "nested too deeply"),
    ]


def test_every_start_up_failure_is_one_error_line(tmp_path: Path) -> None:
    for args, reason in _start_failures(tmp_path):
        done = subprocess.run(
            [*CLI, "serve", "--port", "0", *args],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert reason in _assert_one_error_line(done.stderr), (args, done.stderr)


class _SlowUpstream:
    """An OpenAI-compatible upstream on loopback that holds each answer until released."""

    def __init__(self) -> None:
        self.received = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                outer.received.set()
                outer.release.wait(60)
                body = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "gpt-cheap",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "drained"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def slow_upstream() -> Iterator[_SlowUpstream]:
    upstream = _SlowUpstream()
    yield upstream
    upstream.close()


def _read_until(stream: IO[str], lines: list[str], marker: str) -> str:
    """Read log lines up to the one holding `marker`; a server process that died first fails
    the test (rather than waiting for a start that never comes)."""
    for line in stream:
        lines.append(line)
        if marker in line:
            return line
        if "died" in line:
            raise AssertionError(f"a server process died:\n{''.join(lines)}")
    raise AssertionError(f"the server ended before logging {marker!r}:\n{''.join(lines)}")


def _root_url(line: str) -> str:
    return json.loads(line)["msg"].split("running on ")[1].split()[0]


def test_serve_logs_only_json_answers_health_and_drains_on_sigterm(
    tmp_path: Path, slow_upstream: _SlowUpstream
) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(TEST_CATALOG))
    home = tmp_path / "state"
    env = _env(tmp_path, **provider_env(slow_upstream.url, "k", slow_upstream.url, "k"))
    db = tmp_path / "g.db"
    made = subprocess.run(
        [*CLI, "keys", "create", "--tenant", "acme", "--scope", "route", "--db", str(db), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    secret = json.loads(made.stdout)["secret"]
    url = f"sqlite+aiosqlite:///{db}"  # as given: no note about the URL on stderr
    serve = [*CLI, "serve", "--port", "0", "--db", url, "--catalog", str(catalog)]
    server = subprocess.Popen(
        [*serve, "--home", str(home)], env=env, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        root = _root_url(_read_until(server.stderr, lines, "Uvicorn running on"))
        assert httpx.get(f"{root}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{root}/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "database": "ok",
            "migrations": "ok",
            "signing_key": "ok",
            "catalog": "ok",
        }
        answer: dict[str, Any] = {}

        def ask() -> None:
            response = httpx.post(
                f"{root}/v1/chat/completions",
                headers={"authorization": f"Bearer {secret}"},
                json={
                    "model": "any",
                    "messages": [{"role": "user", "content": "hi"}],
                    "policy": EU_POLICY,
                },
                timeout=60,
            )
            answer["status"] = response.status_code
            answer["body"] = response.json()

        client = threading.Thread(target=ask)
        client.start()
        assert slow_upstream.received.wait(60), "the request never reached the upstream"
        server.send_signal(signal.SIGTERM)
        _read_until(server.stderr, lines, "Shutting down")
        slow_upstream.release.set()
        client.join(60)
        assert answer["status"] == 200, answer
        assert answer["body"]["choices"][0]["message"]["content"] == "drained"
        rest = server.stderr.read()
        assert server.wait(60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    logs = "".join(lines) + rest
    for line in logs.splitlines():
        assert line.startswith("{"), f"not a JSON log line: {line!r}"
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= record.keys()
    assert (home / "ledger-signing.key").exists()  # --home holds the signing key


def test_readyz_names_a_schema_that_is_not_at_head(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    server = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--echo", "--db", str(db)],
        env=_env(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        root = _root_url(_read_until(server.stderr, lines, "Uvicorn running on"))
        assert httpx.get(f"{root}/readyz").status_code == 200
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE alembic_version SET version_num = 'an-older-revision'")
        answer = httpx.get(f"{root}/readyz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "not ready"
        assert answer.json()["checks"]["migrations"].startswith("not at head")
        assert answer.json()["checks"]["database"] == "ok"
        assert httpx.get(f"{root}/healthz").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0


def test_serve_warns_about_a_home_folder_others_can_read(tmp_path: Path) -> None:
    home = tmp_path / "open-home"
    home.mkdir()
    home.chmod(0o755)
    server = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--echo", "--db", str(tmp_path / "w.db")],
        env=_env(tmp_path, UNHARDCODED_HOME=str(home)),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        _read_until(server.stderr, lines, "Uvicorn running on")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    warnings = [
        json.loads(line)
        for line in lines
        if line.startswith("{") and json.loads(line)["level"] == "warning"
    ]
    assert any("chmod 700" in w["msg"] and str(home) in w["msg"] for w in warnings), lines


STARTS = 10


@pytest.mark.postgres
def test_two_server_processes_start_on_postgresql_every_time(
    tmp_path: Path, pg_database: str
) -> None:
    env = _env(tmp_path)
    for start in range(STARTS):
        server = subprocess.Popen(
            [*CLI, "serve", "--echo", "--port", "0", "--workers", "2", "--db", pg_database],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        try:
            assert server.stderr is not None
            root = _root_url(_read_until(server.stderr, lines, "Uvicorn running on"))
            _read_until(server.stderr, lines, "Application startup complete")
            _read_until(server.stderr, lines, "Application startup complete")
            assert httpx.get(f"{root}/readyz").status_code == 200
        finally:
            server.send_signal(signal.SIGTERM)
            rest = server.communicate(timeout=120)[1]
        logs = "".join(lines) + rest
        assert "died" not in logs, (start, logs)
        assert "failed to start" not in logs, (start, logs)
        assert server.returncode == 0, (start, logs)
    note = "note: read the database URL scheme 'postgresql' as 'postgresql+asyncpg'"
    assert note in logs


@pytest.mark.postgres
def test_readyz_says_when_the_database_is_gone(tmp_path: Path, pg_database: str) -> None:
    import asyncio

    server = subprocess.Popen(
        [*CLI, "serve", "--echo", "--port", "0", "--db", pg_database],
        env=_env(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        root = _root_url(_read_until(server.stderr, lines, "Uvicorn running on"))
        assert httpx.get(f"{root}/readyz").status_code == 200
        url = make_url(pg_database)
        dsn = url.set(database="postgres").render_as_string(hide_password=False)

        async def drop() -> None:
            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                await conn.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())
        answer = httpx.get(f"{root}/readyz", timeout=30)
        assert answer.status_code == 503
        assert answer.json()["checks"]["database"].startswith("unreachable")
        assert httpx.get(f"{root}/healthz").json() == {"status": "ok"}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


_SLOW_BOOTSTRAP = """
import sys, time
# A server process of `serve --workers` (a multiprocessing spawn child) that takes longer than
# uvicorn's default 5 s health check to start, as on a busy machine.
if "--multiprocessing-fork" in sys.argv:
    time.sleep({delay})
"""


def test_a_server_process_slow_to_start_is_not_killed_as_dead(tmp_path: Path) -> None:
    """The cause of "Child process died" at start: uvicorn's supervisor pings the first process
    0.5 s after spawning it and kills it when no answer comes within its health-check timeout,
    and a process answers only once its interpreter has started. Here that takes 7 s."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SLOW_BOOTSTRAP.format(delay=7))
    env = _env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    db = f"sqlite+aiosqlite:///{tmp_path / 'slow.db'}"
    server = subprocess.Popen(
        [*CLI, "serve", "--echo", "--port", "0", "--workers", "2", "--db", db],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        _read_until(server.stderr, lines, "Application startup complete")
        _read_until(server.stderr, lines, "Application startup complete")
    finally:
        server.send_signal(signal.SIGTERM)
        rest = server.communicate(timeout=120)[1]
    logs = "".join(lines) + rest
    assert "died" not in logs, logs
    assert server.returncode == 0, logs
