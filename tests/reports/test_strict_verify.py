"""`bundle verify` is strict: a bundle whose proofs still hold is refused when any field of an
event line is false, when the lines are out of position order, when the chain is broken between
two consecutive positions it holds, or when its checkpoint body is malformed under a valid
signature — each problem naming the file, the line and event, and the field."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import Checkpoint, Envelope, SigningKey, merkle, sign_checkpoint
from reports import ReportsError, create_bundle, verify_bundle
from router.services.decisions import DecisionService
from tests.reports.support import populate
from unhardcoded.db import migrated_ledger

Files = dict[str, bytes]
Lines = list[dict[str, Any]]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One real bundle (SQLite ledger) and the ledger's verifier key."""
    tmp = tmp_path_factory.mktemp("strict")

    async def run() -> tuple[Path, str]:
        async with migrated_ledger(f"sqlite+aiosqlite:///{tmp}/l.db", home=tmp / "home") as led:
            await populate(DecisionService(led), rounds=1)
            out = tmp / "acme.zip"
            await create_bundle(led, out, tenant="acme")
            return out, led.public_key()

    return asyncio.run(run())


def _files(bundle: Path) -> Files:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(files: Files, target: Path) -> Path:
    """The bundle of `files`, its manifest re-hashed (what a forger does: it is not signed)."""
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = {
        name: hashlib.sha256(data).hexdigest()
        for name, data in sorted(files.items())
        if name != "manifest.json"
    }
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def _lines(files: Files) -> Lines:
    return [json.loads(line) for line in files["ledger/events.jsonl"].decode().splitlines()]


def _set_lines(files: Files, lines: Lines) -> None:
    files["ledger/events.jsonl"] = "".join(json.dumps(line) + "\n" for line in lines).encode()


def _edit(edit: Callable[[Lines], None]) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        lines = _lines(files)
        edit(lines)
        _set_lines(files, lines)

    return change


def _swap(lines: Lines) -> None:
    lines[1], lines[2] = lines[2], lines[1]


def _repeat(lines: Lines) -> None:
    lines.insert(2, dict(lines[1]))


def _flip_hash(member: str) -> Callable[[Lines], None]:
    def edit(lines: Lines) -> None:
        value = lines[1][member]
        lines[1][member] = ("0" if value[0] != "0" else "1") + value[1:]

    return edit


def _set(member: str, value: object) -> Callable[[Lines], None]:
    def edit(lines: Lines) -> None:
        lines[1][member] = value

    return edit


def _drop(member: str) -> Callable[[Lines], None]:
    def edit(lines: Lines) -> None:
        del lines[1][member]

    return edit


def _upper_id(lines: Lines) -> None:
    lines[1]["event_id"] = lines[1]["event_id"].upper()


def _proof_size(lines: Lines) -> None:
    lines[1]["proof"]["tree_size"] += 1


# (what, edit of the event lines, the problem must contain all of these)
MUTATIONS: list[tuple[str, Callable[[Lines], None], tuple[str, ...]]] = [
    ("two lines swapped", _swap, ("line 3/position", "is not after line 2's", "position order")),
    ("a line repeated", _repeat, ("line 3/position", "is not after line 2's")),
    ("a false leaf_hash", _flip_hash("leaf_hash"), ("line 2/leaf_hash (event", "the line says")),
    ("a false chain_hash", _flip_hash("chain_hash"), ("line 2/chain_hash (event", "line says")),
    ("an unknown member", _set("note", "x"), ("line 2/note: unknown member",)),
    ("a missing member", _drop("chain_hash"), ("line 2/chain_hash: missing",)),
    ("a position as text", _set("position", "3"), ("line 2/position: expected an integer",)),
    ("a boolean version", _set("stream_version", True), ("line 2/stream_version: expected",)),
    ("an upper-case event id", _upper_id, ("line 2/event_id: expected a UUID in canonical",)),
    ("a hash in upper case", _set("prev_hash", "AB" * 32), ("line 2/prev_hash: expected 64",)),
    ("an attachment not hex", _set("attachments", {"body": "x"}), ("line 2/attachments/body",)),
    ("a proof for a larger tree", _proof_size, ("line 2/proof/tree_size", "inclusion proof")),
]


@pytest.mark.parametrize(("what", "edit", "needles"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_false_event_line_is_refused_naming_line_event_and_field(
    made: tuple[Path, str],
    tmp_path: Path,
    what: str,
    edit: Callable[[Lines], None],
    needles: tuple[str, ...],
) -> None:
    bundle, key = made
    assert verify_bundle(bundle, key=key).problems == []
    files = _files(bundle)
    _edit(edit)(files)
    problems = verify_bundle(_write(files, tmp_path / "changed.zip"), key=key).problems
    assert any(
        p.startswith("ledger/events.jsonl line") and all(n in p for n in needles) for p in problems
    ), (what, problems)


def test_the_verdict_does_not_depend_on_the_worker_processes(
    made: tuple[Path, str], tmp_path: Path
) -> None:
    """One process or three checking the event lines: the same result, valid or tampered."""
    bundle, key = made
    cases = [bundle]
    for what, edit, _ in MUTATIONS[::3]:
        files = _files(bundle)
        _edit(edit)(files)
        cases.append(_write(files, tmp_path / f"{what}.zip"))
    for case in cases:
        one = verify_bundle(case, key=key, workers=1).to_json()
        assert verify_bundle(case, key=key, workers=3).to_json() == one
        assert one["ok"] is (case == bundle), (case, one["problems"])
    with pytest.raises(ReportsError, match="workers: expected a positive number"):
        verify_bundle(bundle, key=key, workers=0)


def _envelope(line: dict[str, Any]) -> Envelope:
    payload = line["payload"].encode()
    return Envelope(
        position=line["position"],
        event_id=uuid.UUID(line["event_id"]),
        type=line["type"],
        stream_id=line["stream_id"],
        stream_version=line["stream_version"],
        recorded_at_us=line["recorded_at_us"],
        payload=payload,
        payload_digest=hashlib.sha256(payload).digest(),
        attachment_digests={k: bytes.fromhex(v) for k, v in line["attachments"].items()},
        prev_hash=bytes.fromhex(line["prev_hash"]),
        chain_hash=b"",
        leaf_hash=b"",
    )


def _forge_log(files: Files, key: SigningKey, link: Callable[[int, bytes], bytes]) -> None:
    """Re-home the bundle's events at positions 0, 1, … of a log forged with `key`: each line's
    prev hash is `link(position, chain hash of the position before)`, its own hashes and its
    inclusion proof are true, and the checkpoint over them is signed by `key`."""
    lines = _lines(files)
    prev = bytes(32)
    leaves = []
    for position, line in enumerate(lines):
        line["position"] = position
        line["prev_hash"] = link(position, prev).hex()
        envelope = _envelope(line)
        data = envelope.leaf_data()
        line["leaf_hash"] = merkle.leaf_hash(data).hex()
        prev = hashlib.sha256(envelope.prev_hash + data).digest()
        line["chain_hash"] = prev.hex()
        leaves.append(merkle.leaf_hash(data))
    root = merkle.root(leaves)
    for position, line in enumerate(lines):
        line["proof"] = {
            "format": line["proof"]["format"],
            "leaf_index": position,
            "tree_size": len(leaves),
            "leaf_hash": line["leaf_hash"],
            "hashes": [h.hex() for h in merkle.inclusion_proof(position, leaves)],
        }
    _set_lines(files, lines)
    files["checkpoint.txt"] = sign_checkpoint(Checkpoint(key.name, len(leaves), root), key).encode()
    files["public_key.txt"] = (key.verifier_key() + "\n").encode()
    manifest = json.loads(files["manifest.json"])
    files["manifest.json"] = json.dumps({**manifest, "origin": key.name, "tree_size": len(leaves)})


FORGER = SigningKey.from_private_bytes("forged.example/log", bytes(range(32)))


def _forged_problems(files: Files, target: Path) -> list[str]:
    return verify_bundle(_write(files, target), key=FORGER.verifier_key()).problems


def test_a_broken_chain_between_consecutive_positions_is_refused(
    made: tuple[Path, str], tmp_path: Path
) -> None:
    """Every proof and hash field holds (the log is forged with its own key), but the event at
    position 2 does not link to the chain hash of position 1."""
    bundle, _ = made
    intact = _files(bundle)
    _forge_log(intact, FORGER, lambda _, prev: prev)
    problems = _forged_problems(intact, tmp_path / "intact.zip")
    assert not [p for p in problems if p.startswith("ledger/events.jsonl")], problems

    broken = _files(bundle)
    _forge_log(broken, FORGER, lambda at, prev: bytes(32) if at == 2 else prev)
    problems = _forged_problems(broken, tmp_path / "broken.zip")
    assert [p for p in problems if p.startswith("ledger/events.jsonl")] == [
        next(p for p in problems if "line 3/prev_hash (event" in p)
    ]
    assert any("is not the chain hash" in p and "of position 1 (line 2)" in p for p in problems)

    genesis = _files(bundle)
    _forge_log(genesis, FORGER, lambda at, prev: b"\x01" * 32 if at == 0 else prev)
    problems = _forged_problems(genesis, tmp_path / "genesis.zip")
    assert any("line 1/prev_hash (event" in p and "genesis hash" in p for p in problems)


def _note(body: str, key: SigningKey) -> bytes:
    """A signed note over `body` built by hand (the signature is valid whatever the body)."""
    signature = key.key_id.to_bytes(4, "big") + key.sign(body.encode())
    return f"{body}\n\u2014 {key.name} {base64.b64encode(signature).decode()}\n".encode()


ROOT = base64.b64encode(bytes(32)).decode()
BODIES: list[tuple[str, str, str]] = [
    ("a size with a leading zero", f"{{o}}\n07\n{ROOT}\n", "line 2 (tree size) '07'"),
    ("a size that is not a number", f"{{o}}\nseven\n{ROOT}\n", "line 2 (tree size) 'seven'"),
    ("a short root", "{o}\n7\nAAAA\n", "line 3 (root hash) 'AAAA'"),
    ("no root line", "{o}\n7\n", "has 2 line(s)"),
    ("an empty extension line", f"{{o}}\n7\n{ROOT}\n\n", "checkpoint line 4 is empty"),
    ("a size beyond 2^64-1", f"{{o}}\n{2**64}\n{ROOT}\n", "outside 0..2^64-1"),
]


@pytest.mark.parametrize(("what", "body", "why"), BODIES, ids=[b[0] for b in BODIES])
def test_a_malformed_checkpoint_body_under_a_valid_signature_says_which(
    made: tuple[Path, str], tmp_path: Path, what: str, body: str, why: str
) -> None:
    bundle, _ = made
    files = _files(bundle)
    files["checkpoint.txt"] = _note(body.format(o=FORGER.name), FORGER)
    problems = _forged_problems(files, tmp_path / "c.zip")
    (found,) = [p for p in problems if p.startswith("checkpoint.txt")]
    assert why in found, (what, found)
    assert found.startswith("checkpoint.txt: malformed checkpoint body:"), found
    assert "verifies" in found
    assert "does not verify" not in found


def test_each_checkpoint_failure_is_named_for_what_it_is(
    made: tuple[Path, str], tmp_path: Path
) -> None:
    bundle, key = made
    other = SigningKey.from_private_bytes(FORGER.name, bytes(32))
    cases = {
        "not signed by the key": (_note(f"{FORGER.name}\n7\n{ROOT}\n", other), "does not verify"),
        "another origin": (_note(f"elsewhere\n7\n{ROOT}\n", FORGER), "signed by key"),
        "not a note": (b"hello\n", "not a signed note"),
    }
    for what, (note, needle) in cases.items():
        files = _files(bundle)
        files["checkpoint.txt"] = note
        problems = _forged_problems(files, tmp_path / "c.zip")
        (found,) = [p for p in problems if p.startswith("checkpoint.txt")]
        assert needle in found, (what, found)
    forged = _files(bundle)
    forged["checkpoint.txt"] = forged["checkpoint.txt"].replace(b"\n\n", b"\nx\n\n", 1)
    result = verify_bundle(_write(forged, tmp_path / "f.zip"), key=key)
    (found,) = [p for p in result.problems if p.startswith("checkpoint.txt")]
    assert "does not verify with key" in found
    assert "signature by key" in found


def test_the_manifest_origin_must_be_the_checkpoints(
    made: tuple[Path, str], tmp_path: Path
) -> None:
    bundle, key = made
    files = _files(bundle)
    manifest = json.loads(files["manifest.json"])
    files["manifest.json"] = json.dumps({**manifest, "origin": "elsewhere"}).encode()
    problems = verify_bundle(_write(files, tmp_path / "o.zip"), key=key).problems
    assert any(
        p.startswith("manifest.json/origin: 'elsewhere' is not the checkpoint's") for p in problems
    )


def test_forged_envelope_helper_matches_the_ledger(made: tuple[Path, str]) -> None:
    """The forging helper computes leaves exactly as the ledger does (else the tests above
    would prove nothing)."""
    bundle, _ = made
    for line in _lines(_files(bundle)):
        envelope = _envelope(line)
        data = envelope.leaf_data()
        assert merkle.leaf_hash(data).hex() == line["leaf_hash"]
        assert hashlib.sha256(envelope.prev_hash + data).hexdigest() == line["chain_hash"]
