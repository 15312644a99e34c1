"""`unhardcoded serve` and `unhardcoded keys` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
from click.testing import CliRunner

from router.services.catalogs import bundled_policy_document
from router.services.upstream import ECHO_PREFIX
from unhardcoded.cli import main

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    env["UNHARDCODED_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(REPO)
    return env


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    runner = CliRunner()
    created = runner.invoke(
        main,
        [
            "keys",
            "create",
            "--tenant",
            "acme",
            "--scope",
            "route",
            "--scope",
            "read:own",
            "--db",
            db,
        ],
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("uhk_")
    key_id = secret[4:16]
    listed = runner.invoke(main, ["keys", "list", "--json", "--db", db])
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["key_id"] == key_id
    assert row["scopes"] == ["route", "read:own"]
    assert secret not in listed.stdout
    assert secret.encode() not in (tmp_path / "k.db").read_bytes()
    revoked = runner.invoke(main, ["keys", "revoke", key_id, "--db", db])
    assert revoked.exit_code == 0
    listed = runner.invoke(main, ["keys", "list", "--db", db])
    assert "revoked" in listed.stdout
    unknown = runner.invoke(main, ["keys", "revoke", "000000000000", "--db", db])
    assert unknown.exit_code == 2
    assert "no API key" in unknown.stderr
    bad = runner.invoke(
        main, ["keys", "create", "--tenant", "bad tenant!", "--scope", "route", "--db", db]
    )
    assert bad.exit_code == 2


def test_serve_with_no_settings_runs_on_sqlite_and_the_bundled_catalog_with_echo(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "unhardcoded",
            "keys",
            "create",
            "--tenant",
            "demo",
            "--scope",
            "route",
            "--scope",
            "read:own",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = made.stdout.strip()
    server = subprocess.Popen(
        [sys.executable, "-m", "unhardcoded", "serve", "--echo", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        lines: list[str] = []
        for line in server.stderr:
            lines.append(line)
            if "Uvicorn running on" in line:
                break
        url = line.split("running on ")[1].split()[0]
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="any",
            messages=[{"role": "user", "content": "hello newcomer"}],
            extra_body={"policy": bundled_policy_document("enterprise-eu")},
        )
        assert (raw.parse().choices[0].message.content or "").startswith(ECHO_PREFIX)
        assert raw.headers["x-upstream"] == "echo"
        decision_id = raw.headers["x-decision-id"]
        trace = httpx.get(
            f"{url}/x/decisions/{decision_id}", headers={"authorization": f"Bearer {key}"}
        )
        assert trace.json()["catalog_name"] == "illustrative"
    finally:
        server.terminate()
        _, rest = server.communicate(timeout=30)
    logs = "".join(lines) + rest
    records = [json.loads(row) for row in logs.splitlines() if row.startswith("{")]
    assert any(
        r.get("decision_id") == decision_id and r["route"] == "/v1/chat/completions"
        for r in records
    )
    assert key not in logs
    assert "hello newcomer" not in logs
    assert (tmp_path / "unhardcoded.db").exists()


def test_serve_with_two_processes_shares_one_ledger(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    db = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    cli = [sys.executable, "-m", "unhardcoded"]
    serve = [*cli, "serve", "--echo", "--port", "0", "--workers", "2", "--db", db]
    server = subprocess.Popen(serve, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        url, started = "", 0
        for line in server.stderr:
            if "Uvicorn running on" in line:
                url = line.split("running on ")[1].split()[0]
            started += "Application startup complete" in line
            if started == 2:  # both processes have opened the ledger
                break
        keys = [*cli, "keys", "create", "--tenant", "demo", "--scope", "route", "--db", db]
        made = subprocess.run(
            keys, cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        )
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=made.stdout.strip(), max_retries=0)
        policy = bundled_policy_document("enterprise-eu")

        def ask(i: int) -> str:
            raw = client.chat.completions.with_raw_response.create(
                model="any",
                messages=[{"role": "user", "content": f"request {i}"}],
                extra_body={"policy": policy},
            )
            return raw.headers["x-decision-id"]

        with ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(ask, range(40)))
        assert len(ids) == 40
        # Whichever process answers a scrape, it counts the whole server's decisions.
        routed = 'unhardcoded_decisions_total{outcome="routed"} 40.0'
        for _ in range(10):
            with httpx.Client() as fresh:  # a new connection each time
                assert routed in fresh.get(f"{url}/metrics").text
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert not list((tmp_path / "tmp").iterdir())  # the metrics directory went with the server
    verify = [*cli, "ledger", "verify", "--db", db]
    verified = subprocess.run(verify, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
