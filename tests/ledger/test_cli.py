"""`unhardcoded db upgrade` and `unhardcoded ledger verify|checkpoint|show|proof` on a real file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import InclusionProof, NewEvent, verify_inclusion_document
from tests.ledger._backends import Backend
from unhardcoded.cli import main


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", None, tmp_path)


def _cli(backend: Backend, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        main, [*args, "--db", backend.url], env={"UNHARDCODED_HOME": str(backend.home)}
    )
    return result.exit_code, result.stdout, result.stderr


def _fill(backend: Backend, n: int) -> list[str]:
    async def go() -> list[str]:
        async with backend.open() as led:
            ids = []
            for i in range(n):
                (env,) = await led.append(NewEvent("TestEvent", "fp", {"i": i}))
                ids.append(str(env.event_id))
            return ids

    return asyncio.run(go())


def test_upgrade_checkpoint_verify_show_proof(backend: Backend) -> None:
    code, out, _ = _cli(backend, "db", "upgrade")
    assert code == 0
    assert "database at head" in out
    ids = _fill(backend, 5)

    code, out, _ = _cli(backend, "ledger", "checkpoint")
    assert code == 0
    assert out.splitlines()[1] == "5"
    note = out

    code, key, _ = _cli(backend, "ledger", "checkpoint", "--public-key")
    assert code == 0
    assert key.startswith("unhardcoded/")

    code, out, _ = _cli(backend, "ledger", "verify")
    assert code == 0
    assert "ledger intact: 5 events, 1 signed checkpoints" in out

    code, out, _ = _cli(backend, "ledger", "show", ids[2])
    assert code == 0
    shown = json.loads(out)
    assert (shown["position"], shown["payload"]) == (2, {"i": 2})

    code, out, _ = _cli(backend, "ledger", "proof", ids[3])
    assert code == 0
    bundle = json.loads(out)
    proof = InclusionProof.from_json(json.dumps(bundle["proof"]))
    assert bundle["checkpoint"] == note
    verify_inclusion_document(proof, bundle["checkpoint"], key.strip())


def test_verify_exits_non_zero_naming_the_first_bad_position(backend: Backend) -> None:
    ids = _fill(backend, 4)
    asyncio.run(backend.drop_guards())
    asyncio.run(
        backend.sql("UPDATE ledger_events SET payload = :p WHERE position = 2", {"p": b"{}"})
    )
    code, _, err = _cli(backend, "ledger", "verify")
    assert code == 1
    assert err == (
        f"ledger TAMPERED: position 2: event {ids[2]}: payload_digest does not match the payload\n"
    )


def test_errors_are_one_line_without_traceback(backend: Backend) -> None:
    _fill(backend, 1)
    code, _, err = _cli(backend, "ledger", "show", "not-an-id")
    assert code == 2
    assert err == "error: not an event id (UUID) or position: 'not-an-id'\n"
    code, _, err = _cli(backend, "ledger", "proof", "0")
    assert code == 2
    assert "not covered by a signed checkpoint" in err
    runner = CliRunner()
    result = runner.invoke(main, ["ledger", "verify", "--db", "mysql://x/y"])
    assert result.exit_code == 2
    assert "unsupported database URL scheme 'mysql'" in result.stderr


def test_ledger_commands_refuse_a_database_without_a_ledger(backend: Backend) -> None:
    code, _, err = _cli(backend, "ledger", "verify")
    assert code == 2
    assert "is not an unhardcoded ledger yet: run `unhardcoded db upgrade` (no such file)" in err
    assert not (backend.home / "ledger.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["db"],
        ["db", "upgrade"],
        ["ledger"],
        ["ledger", "verify"],
        ["ledger", "checkpoint"],
        ["ledger", "show"],
        ["ledger", "proof"],
    ],
)
def test_every_command_documents_an_example(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_verify_and_checkpoint_show_progress_on_stderr_only(backend: Backend) -> None:
    _fill(backend, 5)
    code, out, err = _cli(backend, "ledger", "checkpoint", "--json", "--progress")
    assert code == 0
    assert json.loads(out)["checkpoint"]["tree_size"] == 5
    assert "sequencing" in err
    code, out, err = _cli(backend, "ledger", "verify", "--json", "--progress")
    assert code == 0
    assert json.loads(out)["events"] == 5
    assert "verifying" in err
    for command in ("verify", "checkpoint"):
        code, _, err = _cli(backend, "ledger", command, "--no-progress")
        assert code == 0
        assert err == ""
