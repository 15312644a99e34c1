"""C2SP tlog-cosignature v1: the signed message, the signature bytes, key IDs and vkeys, checked
against the spec's example and, where Go is installed, against golang.org/x/mod/sumdb/note."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from hashlib import sha256
from pathlib import Path

import pytest

from ledger import (
    Checkpoint,
    CosignerKey,
    SigningKey,
    VerifierKeyError,
    check_cosignatures,
    cosignature_message,
    open_checkpoint,
    parse_cosigner_key,
    parse_cosigner_secret,
    parse_note,
    sign_checkpoint,
    signature_line,
)

# The example of c2sp.org/tlog-cosignature: a checkpoint cosigned by witness.example.com/w1.
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_NOTE = (
    SPEC_BODY
    + "\n"
    + "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    + "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SPEC_MESSAGE = (
    "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


def _log_note(size: int = 5) -> tuple[SigningKey, str]:
    key = SigningKey.from_private_bytes("unhardcoded/test-log", bytes(range(32)))
    return key, sign_checkpoint(Checkpoint(key.name, size, sha256(b"root").digest()), key)


def test_spec_example_line_and_message() -> None:
    text, signatures = parse_note(SPEC_NOTE)
    assert text == SPEC_BODY
    witness = signatures[1]
    assert witness.name == "witness.example.com/w1"
    # timestamped_signature: an 8-byte big-endian time, then the 64-byte Ed25519 signature.
    assert len(witness.signature) == 8 + 64
    timestamp = int.from_bytes(witness.signature[:8], "big")
    assert timestamp == 1679315147
    assert cosignature_message(text, timestamp) == SPEC_MESSAGE.encode()


def test_key_id_and_vkey_follow_the_spec() -> None:
    key = CosignerKey.from_private_bytes("witness.example/w1", bytes(32))
    public = key.verifier().public_key
    expected = sha256(b"witness.example/w1\n\x04" + public).digest()[:4]
    assert key.key_id == int.from_bytes(expected, "big")
    vkey = str(key.verifier())
    name, hex_id, encoded = vkey.split("+")
    assert (name, hex_id) == ("witness.example/w1", expected.hex())
    assert base64.b64decode(encoded) == b"\x04" + public
    assert parse_cosigner_key(vkey) == key.verifier()
    assert parse_cosigner_secret(key.secret()).verifier() == key.verifier()


def test_cosign_then_check() -> None:
    log, note = _log_note()
    witness = CosignerKey.generate("witness.example/w1")
    other = CosignerKey.generate("witness.example/w2")
    body, _ = parse_note(note)
    cosigned = note + signature_line(witness.cosign(body, 1_700_000_000))
    # The log's signature still opens; the witness line is a signature by another key.
    assert open_checkpoint(cosigned, log.verifier()).size == 5
    checks = check_cosignatures(cosigned, [witness.verifier(), other.verifier()])
    assert [(c.status, c.timestamp) for c in checks] == [
        ("valid", 1_700_000_000),
        ("absent", None),
    ]


def test_forged_and_reused_cosignatures_are_invalid() -> None:
    _, note = _log_note(5)
    _, later = _log_note(6)
    witness = CosignerKey.generate("witness.example/w1")
    body, _ = parse_note(note)
    line = signature_line(witness.cosign(body, 1_700_000_000))
    # The same line on another checkpoint: the signature covers the checkpoint text.
    assert check_cosignatures(later + line, [witness.verifier()])[0].status == "invalid"
    # A line naming the witness, signed by someone else.
    forger = CosignerKey.generate("witness.example/w1")
    forged = forger.cosign(body, 1_700_000_000)
    relabelled = signature_line(type(forged)(witness.name, witness.key_id, forged.signature))
    assert check_cosignatures(note + relabelled, [witness.verifier()])[0].status == "invalid"
    # A log key (type 0x01) is not a cosigner key, and the other way round.
    log, _ = _log_note()
    with pytest.raises(VerifierKeyError, match="type 0x01"):
        parse_cosigner_key(log.verifier_key())


def _go() -> Path:
    """The cross-check program, built against Debian's golang-golang-x-mod-dev."""
    source = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/note")
    go = shutil.which("go")
    if go is None or not source.is_dir():
        pytest.skip("Go and golang.org/x/mod (apt: golang-go golang-golang-x-mod-dev) absent")
    return Path(go)


@pytest.fixture(scope="module")
def cosigncheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = _go()
    out = tmp_path_factory.mktemp("go") / "cosigncheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(out.parent / "cache"),
        "GOFLAGS": "",
    }
    source = Path(__file__).parent / "go" / "cosigncheck.go"
    subprocess.run([str(go), "build", "-o", str(out), str(source)], check=True, env=env)
    return out


def test_go_reference_verifies_our_cosignature(cosigncheck: Path) -> None:
    log, note = _log_note(20852163)
    witness = CosignerKey.generate("witness.example/w1")
    body, _ = parse_note(note)
    cosigned = note + signature_line(witness.cosign(body, 1679315147))
    done = subprocess.run(
        [str(cosigncheck), "verify", log.verifier_key(), str(witness.verifier())],
        input=cosigned.encode(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "1679315147"
    # A reused line (another checkpoint) fails in Go too.
    _, other = _log_note(20852164)
    refused = subprocess.run(
        [str(cosigncheck), "verify", log.verifier_key(), str(witness.verifier())],
        input=(other + signature_line(witness.cosign(body, 1679315147))).encode(),
        capture_output=True,
        check=False,
    )
    assert refused.returncode != 0


def test_we_verify_the_go_reference_cosignature(cosigncheck: Path) -> None:
    log, note = _log_note(7)
    seed = bytes(range(100, 132))
    witness = CosignerKey.from_private_bytes("witness.example/go", seed)
    done = subprocess.run(
        [str(cosigncheck), "cosign", log.verifier_key(), witness.name, seed.hex(), "1700000001"],
        input=note.encode(),
        capture_output=True,
        check=True,
    )
    cosigned = done.stdout.decode()
    assert open_checkpoint(cosigned, log.verifier()).size == 7
    check = check_cosignatures(cosigned, [witness.verifier()])[0]
    assert (check.status, check.timestamp) == ("valid", 1700000001)
    # Byte for byte: Ed25519 is deterministic, so both implementations write the same line.
    body, _ = parse_note(note)
    assert cosigned == note + signature_line(witness.cosign(body, 1700000001))
