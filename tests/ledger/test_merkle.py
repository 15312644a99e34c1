"""`ledger.merkle` against the Certificate Transparency reference vectors, plus properties.

The vectors are the RFC 6962 test data of Certificate Transparency as kept in
github.com/transparency-dev/merkle, proof/verify_test.go (`leaves`, `roots`, `inclusionProofs`,
`consistencyProofs`; the inclusion vectors there number leaves from 1, here from 0).
"""

from __future__ import annotations

from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import MerkleError, merkle

LEAF_DATA = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAVES = [merkle.leaf_hash(d) for d in LEAF_DATA]
EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# ROOTS[n - 1] is the root of the tree over the first n leaves.
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, path)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def _root(n: int) -> bytes:
    return bytes.fromhex(ROOTS[n - 1]) if n else bytes.fromhex(EMPTY_ROOT)


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle.root([]).hex() == EMPTY_ROOT == sha256(b"").hexdigest()


def test_hash_prefixes_are_rfc6962() -> None:
    assert merkle.leaf_hash(b"") == sha256(b"\x00").digest()
    assert merkle.node_hash(b"a", b"b") == sha256(b"\x01ab").digest()
    assert merkle.node_hash(LEAVES[0], LEAVES[1]).hex() == ROOTS[1]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_reference(size: int) -> None:
    assert merkle.root(LEAVES[:size]).hex() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_reference(index: int, size: int, path: list[str]) -> None:
    proof = merkle.inclusion_proof(index, LEAVES[:size])
    assert [p.hex() for p in proof] == path
    assert merkle.verify_inclusion(LEAVES[index], index, size, proof, _root(size))


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_reference(old: int, new: int, path: list[str]) -> None:
    proof = merkle.consistency_proof(old, LEAVES[:new])
    assert [p.hex() for p in proof] == path
    assert merkle.verify_consistency(old, new, _root(old), _root(new), proof)


def _corrupt_inclusion(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[bytes, int, int, list[bytes], bytes]]:
    """The probes of transparency-dev's corruptInclusionProof: each must be rejected."""
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (b"WrongLeaf", index, size, proof, root),
        (leaf, index, size, proof, bytes.fromhex(EMPTY_ROOT)),
        (leaf, index, size, proof, some),
        (leaf, index, size, [*proof, b""], root),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [b"", *proof], root),
        (leaf, index, size, [root, *proof], root),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((leaf, index, size, wrong, root))
    if proof:
        probes.append((leaf, index, size, proof[:-1], root))
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], some, *proof[1:]], root))
    return probes


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION[1:])
def test_corrupted_reference_inclusion_proofs_fail(index: int, size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(p) for p in path]
    for leaf, i, n, p, r in _corrupt_inclusion(index, size, proof, _root(size), LEAVES[index]):
        assert not merkle.verify_inclusion(leaf, i, n, p, r), (i, n, p)


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY[1:])
def test_corrupted_reference_consistency_proofs_fail(old: int, new: int, path: list[str]) -> None:
    proof = [bytes.fromhex(p) for p in path]
    r1, r2 = _root(old), _root(new)
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((old, new, r1, r2, wrong))
    for o, n, a, b, p in probes:
        assert not merkle.verify_consistency(o, n, a, b, p), (o, n, p)


def test_trivial_consistency_cases() -> None:
    r1, r2 = _root(1), _root(2)
    empty = bytes.fromhex(EMPTY_ROOT)
    assert merkle.verify_consistency(0, 0, empty, empty, [])
    assert merkle.verify_consistency(0, 5, empty, _root(5), [])
    assert merkle.verify_consistency(1, 1, r1, r1, [])
    assert not merkle.verify_consistency(1, 1, r1, r2, [])  # same size, other root
    assert not merkle.verify_consistency(1, 0, r1, empty, [])  # time travel
    assert not merkle.verify_consistency(2, 1, r2, r1, [])
    assert not merkle.verify_consistency(1, 2, r1, r2, [])  # proof needed
    assert not merkle.verify_consistency(1, 1, r1, r1, [empty])  # proof must be empty
    assert not merkle.verify_consistency(0, 1, empty, r1, [empty])
    assert not merkle.verify_consistency(0, 1, r2, r1, [])  # not the empty tree's root


def test_verifiers_never_raise_on_garbage() -> None:
    leaf, root = LEAVES[0], _root(8)
    garbage: list[object] = [None, "x", 3, [None], ["ab"], [b"\x00" * 31], object()]
    for proof in garbage:
        assert not merkle.verify_inclusion(leaf, 0, 8, proof, root)  # type: ignore[arg-type]
        assert not merkle.verify_consistency(1, 8, leaf, root, proof)  # type: ignore[arg-type]
    for bad in (-1, 1.0, True, "1", None):
        assert not merkle.verify_inclusion(leaf, bad, 8, [], root)  # type: ignore[arg-type]
        assert not merkle.verify_inclusion(leaf, 0, bad, [], root)  # type: ignore[arg-type]
        assert not merkle.verify_consistency(bad, 8, root, root, [])  # type: ignore[arg-type]
        assert not merkle.verify_consistency(1, bad, root, root, [])  # type: ignore[arg-type]
    assert not merkle.verify_inclusion("leaf", 0, 1, [], root)  # type: ignore[arg-type]
    assert not merkle.verify_inclusion(leaf, 0, 1, [], None)  # type: ignore[arg-type]


def test_generation_rejects_indices_outside_the_tree() -> None:
    with pytest.raises(MerkleError, match="outside a tree of size 8"):
        merkle.inclusion_proof(8, LEAVES)
    with pytest.raises(MerkleError, match="outside a tree of size 0"):
        merkle.inclusion_proof(0, [])
    with pytest.raises(MerkleError, match="outside a tree of size 8"):
        merkle.consistency_proof(9, LEAVES)
    with pytest.raises(MerkleError):
        merkle.inclusion_proof(-1, LEAVES)
    with pytest.raises(MerkleError):
        merkle.inclusion_proof(True, LEAVES)
    with pytest.raises(MerkleError):
        merkle.consistency_proof(2.0, LEAVES)  # type: ignore[arg-type]
    assert merkle.consistency_proof(0, LEAVES) == []
    assert merkle.consistency_proof(8, LEAVES) == []


def _leaves(n: int, seed: int) -> list[bytes]:
    return [merkle.leaf_hash(seed.to_bytes(8, "big") + i.to_bytes(8, "big")) for i in range(n)]


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _inclusion_shape(index: int, size: int) -> tuple[str, ...] | None:
    """The sides of PATH(index, D[size])'s siblings, leaf upwards, from the RFC recursion."""
    if not 0 <= index < size:
        return None
    sides: list[str] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            sides.append("right")
            end = start + k
        else:
            sides.append("left")
            start, m = start + k, m - k
    return tuple(reversed(sides))


def _consistency_shape(old: int, new: int) -> tuple[object, ...] | None:
    """How PROOF(old, D[new])'s elements combine, from the RFC's SUBPROOF recursion: whether the
    old root itself seeds the walk, and for each element whether it joins on the right (new root
    only) or on the left (both roots)."""
    if not 0 < old <= new:
        return None
    sides: list[str] = []
    start, end, m, complete = 0, new, old, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            sides.append("right")
            end = start + k
        else:
            sides.append("left")
            start, m, complete = start + k, m - k, False
    return (complete, tuple(reversed(sides)))


def _flip(proof: list[bytes], element: int, bit: int) -> list[bytes]:
    wrong = list(proof)
    h = bytearray(wrong[element])
    h[bit // 8] ^= 1 << (bit % 8)
    wrong[element] = bytes(h)
    return wrong


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_inclusion_proof_verifies_and_no_tampered_one_does(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 300), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    leaves = _leaves(size, data.draw(st.integers(0, 2**32), label="seed"))
    root, leaf = merkle.root(leaves), leaves[index]
    proof = merkle.inclusion_proof(index, leaves)
    assert merkle.verify_inclusion(leaf, index, size, proof, root)
    if proof:
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        assert not merkle.verify_inclusion(leaf, index, size, _flip(proof, element, bit), root)
    other_index = data.draw(st.integers(0, size + 2).filter(lambda i: i != index))
    assert not merkle.verify_inclusion(leaf, other_index, size, proof, root)
    other_size = data.draw(st.integers(1, 2 * size + 2).filter(lambda n: n != size))
    # A path binds the size only through its shape: a size whose path has the very same shape
    # (e.g. leaf 0 of 7 or of 8 leaves) verifies the same hashes. That is why proof documents
    # take the tree size from the signed checkpoint; every other size must fail.
    same_shape = _inclusion_shape(index, other_size) == _inclusion_shape(index, size)
    assert merkle.verify_inclusion(leaf, index, other_size, proof, root) == same_shape
    assert not merkle.verify_inclusion(_flip([leaf], 0, 0)[0], index, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_consistency_proof_verifies_and_no_tampered_one_does(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, 300), label="new")
    old = data.draw(st.integers(1, new), label="old")
    leaves = _leaves(new, data.draw(st.integers(0, 2**32), label="seed"))
    old_root, new_root = merkle.root(leaves[:old]), merkle.root(leaves)
    proof = merkle.consistency_proof(old, leaves)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    if old == new:
        return
    element = data.draw(st.integers(0, len(proof) - 1), label="element")
    bit = data.draw(st.integers(0, 255), label="bit")
    assert not merkle.verify_consistency(old, new, old_root, new_root, _flip(proof, element, bit))
    other_old = data.draw(st.integers(1, new).filter(lambda m: m != old), label="other old")
    same_shape = _consistency_shape(other_old, new) == _consistency_shape(old, new)
    assert merkle.verify_consistency(other_old, new, old_root, new_root, proof) == same_shape
    other_new = data.draw(st.integers(old, 2 * new).filter(lambda n: n != new), label="other new")
    same_shape = _consistency_shape(old, other_new) == _consistency_shape(old, new)
    assert merkle.verify_consistency(old, other_new, old_root, new_root, proof) == same_shape
    assert not merkle.verify_consistency(old, new, _flip([old_root], 0, 7)[0], new_root, proof)
    assert not merkle.verify_consistency(old, new, old_root, _flip([new_root], 0, 7)[0], proof)


def test_a_path_binds_the_tree_size_only_through_its_shape() -> None:
    # Leaf 0's path in 8 leaves has the same shape (three right siblings) as in 7 or 5 leaves, so
    # the RFC 9162 walk accepts it for those sizes too; 4 or 16 leaves need other shapes.
    proof, root = merkle.inclusion_proof(0, LEAVES), _root(8)
    assert _inclusion_shape(0, 7) == _inclusion_shape(0, 8) == _inclusion_shape(0, 5)
    assert merkle.verify_inclusion(LEAVES[0], 0, 7, proof, root)
    assert merkle.verify_inclusion(LEAVES[0], 0, 5, proof, root)
    assert not merkle.verify_inclusion(LEAVES[0], 0, 4, proof, root)
    assert not merkle.verify_inclusion(LEAVES[0], 0, 16, proof, root)
