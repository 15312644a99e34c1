"""Signed checkpoints: the C2SP signed-note / tlog-checkpoint format, byte for byte.

Known-answer vectors come from golang.org/x/mod, sumdb/note/note_test.go (TestSign, TestOpen,
TestNewVerifier): the PeterNeumann signer and verifier keys and the note they sign, and the
EnochRoot signature; from the examples of c2sp.org/signed-note (C2SP/C2SP commit d4c16da5,
signed-note.md "Example": the example.com/foo key and note) and c2sp.org/tlog-checkpoint; and the
sum.golang.org verifier key that the go command trusts (cmd/go, modfetch knownGOSUMDB).
"""

from __future__ import annotations

import base64
import re
from hashlib import sha256

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import (
    Checkpoint,
    CheckpointBodyError,
    CheckpointError,
    CheckpointFormatError,
    OriginMismatchError,
    SignatureError,
    SigningKey,
    UnknownKeyError,
    VerifierKeyError,
    merkle,
    open_checkpoint,
    parse_signer_key,
    parse_verifier_key,
    sign_checkpoint,
)
from ledger._note import open_note, parse_note, sign_note

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
ROOT8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


def test_go_signer_key_yields_the_published_verifier_key() -> None:
    key = parse_signer_key(PETER_SKEY)
    assert key.verifier_key() == PETER_VKEY
    assert key.secret() == PETER_SKEY
    assert key.key_id == 0xC74F20A3
    assert str(parse_verifier_key(PETER_VKEY)) == PETER_VKEY


def test_signing_reproduces_the_go_note_byte_for_byte() -> None:
    assert sign_note(GO_TEXT, parse_signer_key(PETER_SKEY)) == GO_TEXT + "\n" + PETER_SIG


def test_opening_the_go_note_ignores_unknown_signatures() -> None:
    peter, enoch = parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, peter) == GO_TEXT
    assert open_note(note, enoch) == GO_TEXT
    assert open_note(note.encode("utf-8"), peter) == GO_TEXT
    with pytest.raises(UnknownKeyError, match=r"not signed by key EnochRoot\+af0cfe78"):
        open_note(GO_TEXT + "\n" + PETER_SIG, enoch)


def test_the_signed_note_spec_example_opens() -> None:
    key = parse_verifier_key(SPEC_VKEY)
    assert (key.name, key.key_id) == ("example.com/foo", 0x530D903A)
    assert open_note(SPEC_NOTE, key) == "This is an example message.\n"
    with pytest.raises(SignatureError):
        open_note(SPEC_NOTE.replace("example message", "example massage"), key)


def test_a_real_verifier_key_with_plus_signs_in_its_base64_parses() -> None:
    key = parse_verifier_key(SUMDB_VKEY)
    assert (key.name, key.key_id, str(key)) == ("sum.golang.org", 0x033DE0AE, SUMDB_VKEY)


def test_a_bad_signature_by_the_known_key_rejects_the_note() -> None:
    # TestOpen's "invalid signature": four characters spliced into the base64 signature.
    bad = GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(SignatureError, match=r"PeterNeumann\+c74f20a3 does not verify"):
        open_note(bad, parse_verifier_key(PETER_VKEY))


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name")[:-1],
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG * 101,
        GO_TEXT + "\n" + PETER_SIG.replace("—", "-"),
    ],
)
def test_go_malformed_notes_are_format_errors(note: str) -> None:
    with pytest.raises(CheckpointFormatError):
        open_note(note, parse_verifier_key(PETER_VKEY))


def test_invalid_utf8_is_a_format_error() -> None:
    with pytest.raises(CheckpointFormatError, match="not valid UTF-8"):
        parse_note(b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode())
    with pytest.raises(CheckpointFormatError, match="lone surrogate"):
        parse_note("\udc80" + GO_TEXT + "\n" + PETER_SIG)
    with pytest.raises(CheckpointFormatError, match="lone surrogate"):
        sign_checkpoint(Checkpoint("o", 1, ROOT8, ("\udc80",)), SigningKey.generate("o"))
    with pytest.raises(VerifierKeyError):
        SigningKey.generate("\udc80")


def test_verifier_key_manglings_are_rejected() -> None:
    # TestNewVerifier: every proper substring and every single-byte increment must fail.
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(VerifierKeyError):
                    parse_verifier_key(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(VerifierKeyError):
            parse_verifier_key(mangled)
    # TestNewVerifier's wrong-length and unknown-algorithm keys, with adjusted key hashes.
    with pytest.raises(VerifierKeyError, match="not canonical standard base64"):
        parse_verifier_key(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
    with pytest.raises(VerifierKeyError, match="not an Ed25519 key"):
        parse_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_signer_key_manglings_are_rejected() -> None:
    for i in range(len(PETER_SKEY)):
        mangled = PETER_SKEY[:i] + chr(ord(PETER_SKEY[i]) + 1) + PETER_SKEY[i + 1 :]
        with pytest.raises(VerifierKeyError):
            parse_signer_key(mangled)
    for cut in range(1, len(PETER_SKEY)):
        with pytest.raises(VerifierKeyError):
            parse_signer_key(PETER_SKEY[:cut])


def test_the_spec_example_checkpoint_parses() -> None:
    text, signatures = parse_note(SPEC_CHECKPOINT)
    checkpoint = Checkpoint.parse_body(text)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.body() == text
    assert [(s.name, s.key_id) for s in signatures] == [("example.com/behind-the-sofa", 0x033DE0AE)]
    with pytest.raises(UnknownKeyError, match=r"signed by: example.com/behind-the-sofa\+033de0ae"):
        open_checkpoint(SPEC_CHECKPOINT, PETER_VKEY)


def test_checkpoint_note_is_the_spec_format_byte_for_byte() -> None:
    seed = bytes(range(32))
    key = SigningKey.from_private_bytes("example.com/log", seed)
    note = sign_checkpoint(Checkpoint("example.com/log", 8, ROOT8), key)
    # Built independently from the specs with `cryptography` alone.
    body = "example.com/log\n8\n" + base64.b64encode(ROOT8).decode() + "\n"
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    key_id = sha256(b"example.com/log\n\x01" + public).digest()[:4]
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(body.encode())
    line = "\u2014 example.com/log " + base64.b64encode(key_id + signature).decode() + "\n"
    assert note == body + "\n" + line
    vkey = "example.com/log+" + key_id.hex() + "+" + base64.b64encode(b"\x01" + public).decode()
    assert key.verifier_key() == vkey
    assert open_checkpoint(note, vkey) == Checkpoint("example.com/log", 8, ROOT8)


def test_round_trip_with_a_generated_key_and_extension_lines() -> None:
    key = SigningKey.generate("audit.example/ledger")
    checkpoint = Checkpoint("audit.example/ledger", 0, merkle.root([]), ("ext one", "ext-2"))
    note = sign_checkpoint(checkpoint, key)
    assert open_checkpoint(note, key.verifier_key()) == checkpoint
    assert open_checkpoint(note, key.verifier()) == checkpoint
    again = SigningKey.from_private_bytes(key.name, key.private_bytes())
    assert again.verifier_key() == key.verifier_key()
    assert key.private_bytes().hex() not in repr(key)


def test_one_changed_byte_anywhere_fails() -> None:
    key = SigningKey.from_private_bytes("log.example/a", bytes(32))
    note = sign_checkpoint(Checkpoint("log.example/a", 12345, ROOT8), key).encode()
    vkey = key.verifier()
    for i in range(len(note)):
        for delta in (0x01, 0x20, 0x80):
            mangled = note[:i] + bytes([note[i] ^ delta]) + note[i + 1 :]
            with pytest.raises(CheckpointError):
                open_checkpoint(mangled, vkey)
    for cut in range(len(note)):
        with pytest.raises(CheckpointError):
            open_checkpoint(note[:cut], vkey)


def test_wrong_key_and_wrong_origin_fail_precisely() -> None:
    key = SigningKey.generate("log.example/a")
    note = sign_checkpoint(Checkpoint("log.example/a", 3, ROOT8), key)
    with pytest.raises(UnknownKeyError, match=r"not signed by key log.example/a\+"):
        open_checkpoint(note, SigningKey.generate("log.example/a").verifier())
    with pytest.raises(UnknownKeyError):
        open_checkpoint(note, PETER_VKEY)
    with pytest.raises(OriginMismatchError, match=re.escape("expected 'log.example/b'")):
        open_checkpoint(note, key.verifier(), origin="log.example/b")
    with pytest.raises(OriginMismatchError, match="names its key after its origin"):
        sign_checkpoint(Checkpoint("log.example/b", 3, ROOT8), key)
    # A signature by the right key over another body: the key matches, the signature does not.
    other = sign_checkpoint(Checkpoint("log.example/a", 4, ROOT8), key)
    forged = note.split("\n\n")[0] + "\n\n" + other.split("\n\n")[1]
    with pytest.raises(SignatureError):
        open_checkpoint(forged, key.verifier())


def _signed(body: str) -> str:
    return sign_note(body, SigningKey.from_private_bytes("o", bytes(32)))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("o\n8\n", "needs origin, tree size and root hash"),
        ("o\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "leading zeroes"),
        ("o\n+8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "line 2"),
        ("o\n1_0\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "line 2"),
        ("o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg\n", "line 3 (root hash)"),
        ("o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n", "line 3 (root hash)"),
        ("o\n8\nAAAA\n", "line 3 (root hash)"),
        ("o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\next\n\nmore\n", "line 5 is empty"),
        ("o\n18446744073709551616\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "2^64"),
    ],
)
def test_malformed_checkpoint_bodies_say_what_is_wrong(body: str, message: str) -> None:
    """The signature over each body is valid: the error says so, and names the body's fault."""
    with pytest.raises(CheckpointBodyError, match=re.escape(message)) as raised:
        open_checkpoint(_signed(body), SigningKey.from_private_bytes("o", bytes(32)).verifier())
    assert "the signature by key o+" in str(raised.value)
    assert "verifies, but the signed text is not a checkpoint body" in str(raised.value)


def test_key_names_and_sizes_are_validated() -> None:
    for name in ("", "a b", "a+b", "a\tb"):
        with pytest.raises(VerifierKeyError):
            SigningKey.generate(name)
    with pytest.raises(VerifierKeyError, match="32-byte seed"):
        SigningKey.from_private_bytes("o", bytes(31))
    with pytest.raises(CheckpointFormatError):
        Checkpoint("", 1, ROOT8)
    with pytest.raises(CheckpointFormatError):
        Checkpoint("o", -1, ROOT8)
    with pytest.raises(CheckpointFormatError):
        Checkpoint("o", 1, b"short")
    with pytest.raises(CheckpointFormatError):
        Checkpoint("o", 1, ROOT8, ("",))


def test_a_short_signature_under_the_right_key_id_is_a_signature_error() -> None:
    key = SigningKey.generate("log.example/a")
    body = Checkpoint("log.example/a", 1, ROOT8).body()
    short = base64.b64encode(key.key_id.to_bytes(4, "big") + bytes(10)).decode()
    with pytest.raises(SignatureError):
        open_checkpoint(f"{body}\n— log.example/a {short}\n", key.verifier())
