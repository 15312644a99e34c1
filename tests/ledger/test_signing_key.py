"""A mistaken home folder never mints a signing key silently: commands that only read create
nothing; signing with a key the ledger has never used is refused unless the change is recorded
with `ledger rotate-key`; and `ledger verify` names a checkpoint signed by a key no recorded
rotation introduced."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import (
    KEY_FILE_NAME,
    KEY_ROTATED,
    KEY_STREAM,
    InvalidEventError,
    NewEvent,
    SigningKey,
    SigningKeyError,
)
from ledger._treestore import integrate, latest_checkpoint, read_batch
from tests.conftest import PgSchema
from tests.ledger._backends import Backend
from unhardcoded.cli import main


def _cli(url: str, home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--db", url, "--home", str(home)])
    return result.exit_code, result.stdout, result.stderr


def _append(backend: Backend, n: int) -> None:
    async def go() -> None:
        async with backend.open() as led:
            for i in range(n):
                await led.append(NewEvent("TestEvent", "s", {"i": i}))

    asyncio.run(go())


async def _key_of_new_ledger(backend: Backend) -> str:
    async with backend.open() as led:
        return await led.verifier_key()  # never signed: the home's key, created


def test_a_mistaken_home_creates_nothing_and_signs_nothing(tmp_path: Path) -> None:
    real, other = tmp_path / "real", tmp_path / "other"
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'l.db'}", None, real)
    url = backend.url
    _append(backend, 3)
    code, out, err = _cli(url, real, "ledger", "checkpoint")
    assert code == 0, err
    real_key = _cli(url, real, "ledger", "checkpoint", "--public-key")[1].strip()

    # Reading commands with the wrong home: nothing is created, and the ledger's key is shown.
    for args in (
        ("ledger", "verify"),
        ("ledger", "show", "0", "--raw"),
        ("ledger", "proof", "0"),
        ("ledger", "decisions"),
        ("ledger", "checkpoint", "--public-key"),
    ):
        code, out, err = _cli(url, other, *args)
        assert code == 0, (args, err)
        assert not other.exists(), f"{args} created {other}"
    assert _cli(url, other, "ledger", "checkpoint", "--public-key")[1].strip() == real_key

    # Nothing new to sign: no key is needed.
    assert _cli(url, other, "ledger", "checkpoint")[0] == 0
    assert not other.exists()

    # New events: signing with the wrong home is refused, naming both keys' places.
    _append(backend, 2)
    code, out, err = _cli(url, other, "ledger", "checkpoint")
    assert code == 2
    assert f"{other / KEY_FILE_NAME} holds no key, but this ledger signs with key {real_key}" in err
    assert "ledger rotate-key" in err
    assert not other.exists()
    third = tmp_path / "third"  # a home holding a key of another ledger
    asyncio.run(_key_of_new_ledger(Backend("sqlite", f"{url}.other.db", None, third)))
    code, out, err = _cli(url, third, "ledger", "checkpoint")
    assert code == 2
    assert f"{third / KEY_FILE_NAME} holds key unhardcoded/" in err
    assert f"but this ledger signs with key {real_key}" in err

    code, out, err = _cli(url, real, "ledger", "verify", "--trust-key", real_key)
    assert code == 0, err
    assert "5 events, 1 signed checkpoints" in out  # the refused signatures left no trace


def test_a_recorded_rotation_is_accepted_and_retires_the_old_key(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'l.db'}", None, old)
    url = backend.url
    _append(backend, 3)
    assert _cli(url, old, "ledger", "checkpoint")[0] == 0
    old_key = _cli(url, old, "ledger", "checkpoint", "--public-key")[1].strip()
    _append(backend, 2)  # unsigned events: the rotation's checkpoint covers them too

    code, out, err = _cli(url, old, "ledger", "rotate-key", "--reason", "x")
    assert code == 2
    assert "already holds this ledger's key" in err
    code, out, err = _cli(url, new, "ledger", "rotate-key", "--reason", "old key retired")
    assert code == 0, err
    new_key = out.strip()
    assert new_key != old_key
    assert (new / KEY_FILE_NAME).exists()
    assert _cli(url, old, "ledger", "checkpoint", "--public-key")[1].strip() == new_key

    code, out, _ = _cli(url, new, "ledger", "show", "5", "--raw")
    event = json.loads(out)
    assert (event["type"], event["stream_id"]) == (KEY_ROTATED, KEY_STREAM)
    assert event["payload"] == {"from": old_key, "to": new_key, "reason": "old key retired"}

    _append(backend, 1)
    code, out, err = _cli(url, old, "ledger", "checkpoint")
    assert code == 2
    assert f"this ledger signs with key {new_key}" in err
    code, out, err = _cli(url, new, "ledger", "checkpoint")
    assert code == 0, err
    assert out.splitlines()[1] == "7"

    code, out, err = _cli(
        url, new, "ledger", "verify", "--trust-key", old_key, "--trust-key", new_key
    )
    assert code == 0, err
    assert "7 events, 3 signed checkpoints" in out
    code, out, err = _cli(url, new, "ledger", "verify", "--trust-key", new_key)
    assert code == 1
    assert "checkpoint at tree size 3 is signed by an untrusted key" in err


async def _forge_unrecorded_key_change(backend: Backend) -> str:
    """What a mistaken home did before keys were checked: sign the next checkpoint with a key
    the ledger never used (the store's sequencing primitive, called without the check)."""
    async with backend.open() as led:
        await led.append(NewEvent("TestEvent", "s", {"i": 0}))
        await led.sequence()
        await led.append(NewEvent("TestEvent", "s", {"i": 1}))
        stray = SigningKey.from_private_bytes(led.origin, bytes(32))
        async with led.store.read() as conn:
            batch = await read_batch(conn, await latest_checkpoint(conn), 100)
        writer = led.store.writer()
        try:
            assert await writer.write_tree(integrate(batch, stray, led.origin))
        finally:
            await writer.close()
        report = await led.verify()
        assert report.problem is not None
        with pytest.raises(InvalidEventError, match="rotate_key"):
            await led.append(NewEvent(KEY_ROTATED, KEY_STREAM, {"to": stray.verifier_key()}))
        return str(report.problem)


async def test_verify_names_a_checkpoint_signed_by_an_unrecorded_key_sqlite(
    tmp_path: Path,
) -> None:
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'l.db'}", None, tmp_path)
    problem = await _forge_unrecorded_key_change(backend)
    assert "checkpoint at tree size 2 is signed by key unhardcoded/" in problem
    assert "no recorded rotation hands signing to it" in problem


async def test_verify_names_a_checkpoint_signed_by_an_unrecorded_key_postgresql(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    backend = Backend("postgresql", pg_schema.url, pg_schema.schema, tmp_path)
    problem = await _forge_unrecorded_key_change(backend)
    assert "checkpoint at tree size 2 is signed by key unhardcoded/" in problem


async def test_rotation_and_refusal_on_postgresql(tmp_path: Path, pg_schema: PgSchema) -> None:
    backend = Backend("postgresql", pg_schema.url, pg_schema.schema, tmp_path / "old")
    moved = Backend("postgresql", pg_schema.url, pg_schema.schema, tmp_path / "new")
    async with backend.open() as led:
        await led.append(NewEvent("TestEvent", "s", {"i": 0}))
        await led.sequence()
        first = led.public_key()
    async with moved.open() as led:
        await led.append(NewEvent("TestEvent", "s", {"i": 1}))
        with pytest.raises(SigningKeyError, match="holds no key"):
            await led.sequence()
        with pytest.raises(SigningKeyError, match="holds no key"):
            await led.check_signing_key()
        assert not (tmp_path / "new").exists()
        signed = await led.rotate_key("moved to a new host")
        assert signed is not None
        assert signed.tree_size == 3
        assert signed.verifier_key == led.public_key() != first
        assert (await led.verify()).problem is None
    async with backend.open() as led:
        with pytest.raises(SigningKeyError, match="this ledger signs with key"):
            await led.check_signing_key()
