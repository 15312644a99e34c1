"""The witness over HTTP (a real `unhardcoded witness serve` on loopback): c2sp.org/tlog-witness
v1 answers, cosignatures that verify, refusals with the spec's status codes kept as evidence,
and a restart from its database that keeps refusing."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from ledger import (
    Checkpoint,
    Ledger,
    NewEvent,
    SigningKey,
    check_cosignatures,
    parse_cosigner_key,
    sign_checkpoint,
)
from ledger.merkle import consistency_proof, leaf_hash, root
from router.services.witness import AddCheckpoint, Witness
from tests.witness._processes import env, serving, witness_init
from unhardcoded.db import migrated_ledger


async def _grow(ledger: Ledger, count: int, tag: str) -> tuple[int, str]:
    await ledger.append([NewEvent("Note", f"s/{tag}/{i}", {"i": i}) for i in range(count)])
    signed = await ledger.sequence()
    assert signed is not None
    return signed.tree_size, signed.note


async def _post(url: str, old: int, proof: list[bytes], note: str) -> httpx.Response:
    body = AddCheckpoint(old, tuple(proof), note).to_bytes()
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{url}/add-checkpoint", content=body)


async def test_cosign_refuse_and_restart(tmp_path: Path) -> None:
    environ = env(tmp_path)
    home = tmp_path / "home"
    db = f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    folder = tmp_path / "w1"
    async with migrated_ledger(db, home=home) as ledger:
        vkey = witness_init(folder, "witness.test/w1", await ledger.verifier_key(), environ)
        witness_key = parse_cosigner_key(vkey)
        assert (folder / "witness.key").stat().st_mode & 0o777 == 0o600
        assert (folder / "witness.db").stat().st_mode & 0o777 == 0o600
        assert folder.stat().st_mode & 0o777 == 0o700
        size3, note3 = await _grow(ledger, 3, "a")
        size6, note6 = await _grow(ledger, 3, "b")
        proof36, _, _ = await ledger.consistency_proof(size3, size6)
        with serving(["witness", "serve", "--dir", str(folder)], environ) as url:
            async with httpx.AsyncClient() as client:
                assert (await client.get(url)).text.strip() == vkey
                junk = await client.post(
                    f"{url}/add-checkpoint", content=b"old 01\n\n" + note3.encode()
                )
            # Malformed: 400, naming the line.
            assert junk.status_code == 400
            assert "line 1" in junk.text
            first = await _post(url, 0, [], note3)
            assert first.status_code == 200, first.text
            check = check_cosignatures(note3 + first.text, [witness_key])[0]
            assert check.status == "valid"
            # The witness is at 3: old size 0 is a conflict that tells the log where it is.
            stale = await _post(url, 0, [], note6)
            assert stale.status_code == 409
            assert stale.headers["content-type"] == "text/x.tlog.size"
            assert stale.text == "3\n"
            grown = await _post(url, size3, list(proof36.hashes), note6)
            assert grown.status_code == 200, grown.text
            assert check_cosignatures(note6 + grown.text, [witness_key])[0].status == "valid"
            # A smaller tree: refused, with the witness's size.
            back = await _post(url, size3, [], note3)
            assert (back.status_code, back.text) == (409, "6\n")
            # A proof that does not connect: 422.
            size9, note9 = await _grow(ledger, 3, "c")
            bad = await _post(url, size6, [bytes(32)] * 2, note9)
            assert bad.status_code == 422, bad.text
            # Unknown origin: 404; a checkpoint signed by another key of the same name: 403.
            stranger = SigningKey.generate("unhardcoded/stranger")
            alien = sign_checkpoint(Checkpoint(stranger.name, 1, bytes(32)), stranger)
            assert (await _post(url, 0, [], alien)).status_code == 404
            impostor = SigningKey.generate(ledger.origin)
            forged = sign_checkpoint(Checkpoint(ledger.origin, 12, bytes(32)), impostor)
            assert (await _post(url, size6, [], forged)).status_code == 403
            assert (await _post(url, size9 + 1, [], note9)).status_code == 400
        # Restarted from its database: it still knows size 6 and refuses what does not follow.
        with serving(["witness", "serve", "--dir", str(folder)], environ) as url:
            assert (await _post(url, size3, [], note3)).text == "6\n"
            proof69, _, _ = await ledger.consistency_proof(size6, size9)
            assert (await _post(url, size6, list(proof69.hashes), note9)).status_code == 200
    state = Witness(folder)
    assert state.cosigned_sizes(ledger.origin) == [3, 6, 9]
    refused = state.refusals(ledger.origin)
    assert [r.status for r in refused] == [409, 422, 409]
    assert refused[1].request.startswith(b"old 6\n")


async def test_a_rewritten_log_is_refused(tmp_path: Path) -> None:
    """The log's own key signs another history: the witness refuses it whatever the proof."""
    environ = env(tmp_path)
    home = tmp_path / "home"
    db = f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    folder = tmp_path / "w1"
    async with migrated_ledger(db, home=home) as ledger:
        witness_init(folder, "witness.test/w1", await ledger.verifier_key(), environ)
        size, note = await _grow(ledger, 6, "honest")
        leaves = [e.leaf_hash for e in await ledger.read(0, size)]
        seed = (home / "ledger-signing.key").read_text().splitlines()[1]
        key = SigningKey.from_private_bytes(ledger.origin, base64.b64decode(seed))
        # History changed at position 2, extended to 8 leaves, re-signed with the log's key.
        rewritten = [
            *leaves[:2],
            leaf_hash(b"rewritten"),
            *leaves[3:],
            leaf_hash(b"x"),
            leaf_hash(b"y"),
        ]
        fork6 = sign_checkpoint(Checkpoint(ledger.origin, 6, root(rewritten[:6])), key)
        fork8 = sign_checkpoint(Checkpoint(ledger.origin, 8, root(rewritten)), key)
        with serving(["witness", "serve", "--dir", str(folder)], environ) as url:
            assert (await _post(url, 0, [], note)).status_code == 200
            # Same size, another root: a fork (409). A proof made over the rewritten leaves
            # connects the rewritten trees, not the cosigned one (422).
            assert (await _post(url, 6, [], fork6)).status_code == 409
            proof = consistency_proof(6, rewritten)
            assert (await _post(url, 6, proof, fork8)).status_code == 422
    assert [r.status for r in Witness(folder).refusals()] == [409, 422]


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_a_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    folder = tmp_path / "w"
    Witness.init(folder, "witness.test/w")
    (folder / "witness.key").chmod(mode)
    with pytest.raises(Exception, match="chmod 600"):
        Witness(folder)
