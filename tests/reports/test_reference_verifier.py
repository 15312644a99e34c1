"""The reference verifier of docs/bundles.md ("Checking by hand") is complete: it accepts a real
bundle (also with a witness's cosignature line before the log's), and refuses each forgery the
project's own verifier refuses — run exactly as printed in the docs, in a fresh process."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import random
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ledger import SigningKey, merkle
from reports import create_bundle
from router.services.decisions import DecisionService
from tests.reports.support import populate
from unhardcoded.db import migrated_ledger

ROOT = Path(__file__).resolve().parents[2]
Files = dict[str, bytes]


def _program() -> str:
    text = (ROOT / "docs" / "bundles.md").read_text(encoding="utf-8")
    (block,) = re.findall(r'```python\n("""Reference verifier.*?)```', text, re.S)
    return block


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Files, str]:
    """The files of one real bundle (SQLite ledger) and the ledger's verifier key."""
    tmp = tmp_path_factory.mktemp("reference")

    async def run() -> tuple[Path, str]:
        async with migrated_ledger(f"sqlite+aiosqlite:///{tmp}/l.db", home=tmp / "home") as led:
            await populate(DecisionService(led), rounds=1)
            out = tmp / "acme.zip"
            await create_bundle(led, out, tenant="acme")
            return out, led.public_key()

    bundle, key = asyncio.run(run())
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}, key


def _run(folder: Path, files: Files, key: str) -> subprocess.CompletedProcess[str]:
    """The docs' program in `folder`, on `acme.zip` made of `files` (manifest re-hashed, as a
    forger would) and `ledger.pub` holding `key`."""
    folder.mkdir()
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = {
        n: hashlib.sha256(d).hexdigest() for n, d in sorted(files.items()) if n != "manifest.json"
    }
    files = {**files, "manifest.json": json.dumps(manifest, indent=2).encode()}
    with zipfile.ZipFile(folder / "acme.zip", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    (folder / "ledger.pub").write_text(key + "\n", encoding="utf-8")
    (folder / "verify.py").write_text(_program(), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "verify.py"], cwd=folder, capture_output=True, text=True, check=False
    )


def _witness_first(files: Files) -> None:
    """A witness cosignature line (C2SP tlog-cosignature: key id, timestamp, signature) first."""
    note = files["checkpoint.txt"].decode()
    body, signatures = note.split("\n\n", 1)
    blob = base64.b64encode(bytes(4) + (1234).to_bytes(8, "big") + bytes(64)).decode()
    files["checkpoint.txt"] = f"{body}\n\n\u2014 witness.example/w1 {blob}\n{signatures}".encode()


def _same_id_other_name(files: Files) -> None:
    """The log's signature line, renamed: a line naming another key must not count."""
    note = files["checkpoint.txt"].decode()
    files["checkpoint.txt"] = re.sub("\u2014 [^ ]+ ", "\u2014 someone.else ", note).encode()


def _lines(edit: Callable[[list[dict[str, Any]]], None]) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        lines = [json.loads(x) for x in files["ledger/events.jsonl"].decode().splitlines()]
        edit(lines)
        files["ledger/events.jsonl"] = "".join(json.dumps(x) + "\n" for x in lines).encode()

    return change


def _swap(lines: list[dict[str, Any]]) -> None:
    lines[1], lines[2] = lines[2], lines[1]


def _false(member: str) -> Callable[[list[dict[str, Any]]], None]:
    def edit(lines: list[dict[str, Any]]) -> None:
        lines[1][member] = "00" * 32

    return edit


def _manifest(**members: object) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        files["manifest.json"] = json.dumps({**json.loads(files["manifest.json"]), **members})

    return change


def _drop_decision_row(files: Files) -> None:
    files["ledger/events.jsonl"] = b"".join(
        line + b"\n"
        for i, line in enumerate(files["ledger/events.jsonl"].splitlines())
        if i
        != [json.loads(x)["type"] for x in files["ledger/events.jsonl"].splitlines()].index(
            "DecisionMade"
        )
    )


def _drop_sequenced(version: int) -> Callable[[Files], None]:
    """Leave version `version` of acme's sequence out, with its attempts and its data row, and
    count one decision less: everything the reference verifier reads agrees again."""

    def change(files: Files) -> None:
        lines = [json.loads(x) for x in files["ledger/events.jsonl"].decode().splitlines()]
        (victim,) = [
            x["event_id"]
            for x in lines
            if x["stream_id"] == "decisions/acme" and x["stream_version"] == version
        ]
        kept = [
            x
            for x in lines
            if x["event_id"] != victim
            and not (
                x["type"] == "AttemptFinished" and json.loads(x["payload"])["decision_id"] == victim
            )
        ]
        files["ledger/events.jsonl"] = "".join(json.dumps(x) + "\n" for x in kept).encode()
        for name in [n for n in files if n.startswith("data/decisions/")]:
            table = pq.read_table(io.BytesIO(files[name]))
            sink = io.BytesIO()
            pq.write_table(table.filter(pc.not_equal(table["decision_id"], victim)), sink)
            files[name] = sink.getvalue()
        manifest = json.loads(files["manifest.json"])
        manifest["decisions"] -= 1
        files["manifest.json"] = json.dumps(manifest).encode()

    return change


def _without_claim(files: Files) -> None:
    manifest = json.loads(files["manifest.json"])
    del manifest["completeness"]
    files["manifest.json"] = json.dumps(manifest).encode()


CASES: list[tuple[str, Callable[[Files], None], str | None]] = [
    ("untouched", lambda f: None, None),
    ("a witness cosignature line first", _witness_first, None),
    ("the log's signature under another name", _same_id_other_name, "no signature by the"),
    ("two event lines swapped", _lines(_swap), "not in position order"),
    ("a false leaf_hash", _lines(_false("leaf_hash")), "leaf_hash or chain_hash"),
    ("a false chain_hash", _lines(_false("chain_hash")), "leaf_hash or chain_hash"),
    ("a false payload", _lines(lambda x: x[1].update(payload="{}")), "leaf_hash or chain_hash"),
    ("another origin", _manifest(origin="elsewhere"), "origin or tree size"),
    ("another tree size", _manifest(tree_size=1), "origin or tree size"),
    ("another tenant", _manifest(tenant="globex"), "another decision id or tenant"),
    ("a later period", _manifest(since="2099-01-01T00:00:00Z"), "outside the period"),
    ("a decision's event removed", _drop_decision_row, "completeness: "),
    ("a decision of the period left out, the rest agreeing", _drop_sequenced(2), "a gap"),
    ("the first decision left out", _drop_sequenced(1), "event before the period"),
    ("the seal left out", _drop_sequenced(5), "nothing proves"),
    ("the completeness claim removed", _without_claim, "completeness: the manifest claims"),
]


@pytest.mark.parametrize(("what", "change", "refusal"), CASES, ids=[c[0] for c in CASES])
def test_the_reference_verifier_accepts_and_refuses_what_it_should(
    made: tuple[Files, str],
    tmp_path: Path,
    what: str,
    change: Callable[[Files], None],
    refusal: str | None,
) -> None:
    files, key = dict(made[0]), made[1]
    change(files)
    ran = _run(tmp_path / "run", files, key)
    if refusal is None:
        assert ran.returncode == 0, (what, ran.stderr)
        assert ran.stdout.startswith("ok: unhardcoded/"), ran.stdout
    else:
        assert ran.returncode == 1, (what, ran.stdout, ran.stderr)
        assert "bundle refused: " in ran.stderr, (what, ran.stderr)
        assert refusal in ran.stderr, (what, ran.stderr)


def test_a_wrong_key_and_a_malformed_body_are_refused(
    made: tuple[Files, str], tmp_path: Path
) -> None:
    files, key = made
    other = SigningKey.from_private_bytes(key.split("+")[0], bytes(32))
    ran = _run(tmp_path / "other", dict(files), other.verifier_key())
    assert "bundle refused: checkpoint.txt: no signature by the verifier key" in ran.stderr
    name, key_id, encoded = key.split("+", 2)
    ran = _run(tmp_path / "id", dict(files), f"{name}+{int(key_id, 16) ^ 1:08x}+{encoded}")
    assert "bundle refused: the verifier key's id does not match" in ran.stderr
    root = base64.b64encode(bytes(32)).decode()
    body = f"{other.name}\n07\n{root}\n"
    blob = base64.b64encode(other.key_id.to_bytes(4, "big") + other.sign(body.encode()))
    forged = {**files, "checkpoint.txt": f"{body}\n\u2014 {other.name} {blob.decode()}\n".encode()}
    ran = _run(tmp_path / "body", forged, other.verifier_key())
    assert "bundle refused: checkpoint.txt: line 2 is not a tree size" in ran.stderr


def _root_from() -> Callable[[bytes, int, int, list[bytes]], bytes | None]:
    """`node` and `root_from` exactly as the docs print them."""
    source = _program()
    start = source.index("def node(")
    namespace: dict[str, Any] = {"hashlib": hashlib}
    exec(source[start : source.index("\n\n\n#", start)], namespace)
    function: Callable[[bytes, int, int, list[bytes]], bytes | None] = namespace["root_from"]
    return function


def test_the_printed_root_from_is_rfc_9162_inclusion_verification() -> None:
    """Against the reference Merkle module: every true path leads to the root; a path one hash
    too long or too short, an index at or past the size, or another index does not."""
    root_from = _root_from()
    rng = random.Random(7)
    for size in [*range(1, 40), 64, 65, 1000]:
        leaves = [hashlib.sha256(rng.randbytes(8)).digest() for _ in range(size)]
        root = merkle.root(leaves)
        for index in {0, size - 1, rng.randrange(size)}:
            path = merkle.inclusion_proof(index, leaves)
            assert root_from(leaves[index], index, size, path) == root
            assert root_from(leaves[index], index, size, [*path, bytes(32)]) != root
            if path:
                assert root_from(leaves[index], index, size, path[:-1]) != root
            assert root_from(leaves[index], size, size, path) is None
            assert root_from(leaves[index], size + index, size, path) is None
            if size > 1:
                other = (index + 1) % size
                assert root_from(leaves[index], other, size, path) != root
