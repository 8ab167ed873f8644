"""Tests for mlgate.ledger.merkle against RFC 9162 §2.1 and the CT test vectors."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleError,
    MerkleLevels,
    NodeId,
    completed_nodes,
    consistency_proof,
    consistency_proof_nodes,
    fold,
    inclusion_proof,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    range_nodes,
    root_hash,
    root_nodes,
    verify_consistency,
    verify_inclusion,
)

# -- naive reference, written straight from the RFC 9162 §2.1 text --------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """§2.1.1 MTH."""
    n = len(d)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return _sha(b"\x00" + d[0])
    k = _k(n)
    return _sha(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """§2.1.3.1 PATH(m, D[n])."""
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """§2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """§2.1.4.1 PROOF(m, D[n])."""
    return ref_subproof(m, d, True)


# -- fixtures -------------------------------------------------------------------------

MAX = 300
ENTRIES = [b"entry %d" % i for i in range(MAX)]
LEVELS = MerkleLevels.from_leaf_hashes([leaf_hash(e) for e in ENTRIES])


class CountingSource:
    """A NodeSource over LEVELS that only has the nodes stored when the log had `size` leaves."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.requested: list[NodeId] = []
        self.calls = 0

    def __call__(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        self.calls += 1
        self.requested.extend(ids)
        for level, index in ids:
            assert (index + 1) << level <= self.size, f"node {(level, index)} not stored yet"
        return LEVELS.get_nodes(ids)


def _log2_ceil(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


def rejects(check: Callable[[], bool]) -> bool:
    """True when a verification returns False or refuses its arguments outright."""
    try:
        return not check()
    except MerkleError:
        return True


def _flip(proof: list[bytes], i: int, j: int) -> list[bytes]:
    out = list(proof)
    out[i] = out[i][:j] + bytes([out[i][j] ^ 0x01]) + out[i][j + 1 :]
    return out


sizes = st.integers(min_value=1, max_value=MAX)

# -- certificate-transparency known answers -------------------------------------------
# transparency-dev/merkle testonly/constants.go (LeafInputs, NodeHashes, RootHashes) and
# proof/verify_test.go (inclusionProofs, consistencyProofs), the RFC 6962 vectors of
# google/certificate-transparency. Inclusion vectors there use 1-based leaf numbers.

CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_NODES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
# (0-based index, size, proof)
CT_INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (5, 8, ["bc1a0643", "ca854ea1", "d37ee418"]),
    (2, 3, ["fac54203"]),
    (1, 5, ["6e340b9c", "5f083f0a", "bc1a0643"]),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (6, 8, ["0ebc5d34", "ca854ea1", "d37ee418"]),
    (2, 5, ["5f083f0a", "bc1a0643"]),
    (6, 7, ["0ebc5d34", "b08693ec", "d37ee418"]),
]
CT_LEVELS = MerkleLevels.from_leaf_hashes([leaf_hash(e) for e in CT_LEAVES])
_BY_PREFIX = {h[:8]: bytes.fromhex(h) for row in CT_NODES for h in row}


def test_empty_root_and_hash_primitives() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert leaf_hash(b"") == _sha(b"\x00")
    assert node_hash(b"a" * 32, b"b" * 32) == _sha(b"\x01" + b"a" * 32 + b"b" * 32)
    assert root_hash(0, CT_LEVELS.get_nodes) == EMPTY_ROOT
    assert MerkleLevels.from_leaf_hashes([]).root_hash(0) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_ct_roots(size: int) -> None:
    expected = bytes.fromhex(CT_ROOTS[size])
    assert ref_mth(CT_LEAVES[:size]) == expected
    assert CT_LEVELS.root_hash(size) == expected
    assert root_hash(size, CT_LEVELS.get_nodes) == expected


def test_ct_node_hashes() -> None:
    got = {node: digest.hex() for node, digest in CT_LEVELS.nodes()}
    want = {(lv, i): h for lv, row in enumerate(CT_NODES) for i, h in enumerate(row)}
    assert got == want


@pytest.mark.parametrize(("index", "size", "prefixes"), CT_INCLUSION)
def test_ct_inclusion(index: int, size: int, prefixes: list[str]) -> None:
    want = [_BY_PREFIX[p] for p in prefixes]
    proof = inclusion_proof(index, size, CT_LEVELS.get_nodes)
    assert proof == want == ref_path(index, CT_LEAVES[:size])
    leaf, root = leaf_hash(CT_LEAVES[index]), bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(leaf, index, size, proof, root)
    # The corruptions of transparency-dev/merkle proof/verify_test.go.
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (b"WrongLeaf", index, size, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, some),
        (leaf, index, size, [*proof, b""], root),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [b"", *proof], root),
        (leaf, index, size, [root, *proof], root),
        (leaf, index, size, proof[:-1], root) if proof else (leaf, index, size, [some], root),
    ]
    probes += [(leaf, index, size, _flip(proof, i, 0), root) for i in range(len(proof))]
    for probe in probes:
        assert rejects(functools.partial(verify_inclusion, *probe)), probe


@pytest.mark.parametrize(("old", "new", "prefixes"), CT_CONSISTENCY)
def test_ct_consistency(old: int, new: int, prefixes: list[str]) -> None:
    want = [_BY_PREFIX[p] for p in prefixes]
    proof = consistency_proof(old, new, CT_LEVELS.get_nodes)
    assert proof == want == ref_proof(old, CT_LEAVES[:new])
    r1, r2 = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, r1, r2, proof)
    if not proof:
        return
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
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
    probes += [(old, new, r1, r2, _flip(proof, i, 0)) for i in range(len(proof))]
    for probe in probes:
        assert rejects(functools.partial(verify_consistency, *probe)), probe


# -- stored-node API against the reference ---------------------------------------------


@given(size=st.integers(min_value=0, max_value=MAX))
def test_root_matches_reference(size: int) -> None:
    source = CountingSource(size)
    want = ref_mth(ENTRIES[:size])
    assert root_hash(size, source) == want == LEVELS.root_hash(size)
    assert source.calls == (1 if size else 0)
    assert len(source.requested) == len(root_nodes(size)) <= max(1, _log2_ceil(size))


@settings(max_examples=300)
@given(data=st.data(), size=sizes)
def test_inclusion_matches_reference_and_verifies(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    source = CountingSource(size)
    proof = inclusion_proof(index, size, source)
    assert proof == ref_path(index, ENTRIES[:size])
    assert source.calls == 1
    assert len(proof) <= _log2_ceil(size)
    assert len(source.requested) <= 2 * _log2_ceil(size) + 2
    leaf, root = leaf_hash(ENTRIES[index]), LEVELS.root_hash(size)
    assert verify_inclusion(leaf, index, size, proof, root)

    for i in range(len(proof)):
        j = data.draw(st.integers(min_value=0, max_value=HASH_SIZE - 1), label="byte")
        assert not verify_inclusion(leaf, index, size, _flip(proof, i, j), root)
    other = data.draw(st.integers(min_value=0, max_value=size - 1), label="other index")
    if other != index:
        assert not verify_inclusion(leaf, other, size, proof, root)
    # A wrong size only fails against that size's root: an RFC 9162 inclusion proof does
    # not bind the size by itself (e.g. (0, 3)'s proof verifies as (0, 4) under root 3),
    # which is why a checkpoint signs size and root together.
    wrong = data.draw(st.integers(min_value=index + 1, max_value=MAX), label="other size")
    if wrong != size:
        assert not verify_inclusion(leaf, index, wrong, proof, LEVELS.root_hash(wrong))
    assert not verify_inclusion(leaf, index, size, proof, _sha(root))
    assert not verify_inclusion(_sha(leaf), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, [*proof, root], root)
    if proof:
        assert not verify_inclusion(leaf, index, size, [p[:-1] for p in proof], root)


@settings(max_examples=300)
@given(data=st.data(), new=sizes)
def test_consistency_matches_reference_and_verifies(data: st.DataObject, new: int) -> None:
    old = data.draw(st.integers(min_value=0, max_value=new), label="old")
    source = CountingSource(new)
    proof = consistency_proof(old, new, source)
    want = ref_proof(old, ENTRIES[:new]) if 0 < old < new else []
    assert proof == want
    assert len(source.requested) <= 2 * _log2_ceil(new) + 2
    r1, r2 = LEVELS.root_hash(old), LEVELS.root_hash(new)
    assert verify_consistency(old, new, r1, r2, proof)
    if old in (0, new):
        assert not verify_consistency(old, new, r1, r2, [r1])
        return

    for i in range(len(proof)):
        j = data.draw(st.integers(min_value=0, max_value=HASH_SIZE - 1), label="byte")
        assert not verify_consistency(old, new, r1, r2, _flip(proof, i, j))
    other = data.draw(st.integers(min_value=1, max_value=new), label="other old size")
    if other != old:
        assert not verify_consistency(other, new, LEVELS.root_hash(other), r2, proof)
    wrong = data.draw(st.integers(min_value=old, max_value=MAX), label="other new size")
    if wrong != new:
        assert not verify_consistency(old, wrong, r1, LEVELS.root_hash(wrong), proof)
    assert not verify_consistency(old, new, _sha(r1), r2, proof)
    assert not verify_consistency(old, new, r1, _sha(r2), proof)
    assert not verify_consistency(old, new, r1, r2, proof[:-1])
    assert not verify_consistency(old, new, r1, r2, [*proof, r2])


@settings(max_examples=50)
@given(size=st.integers(min_value=0, max_value=MAX))
def test_completed_nodes_build_exactly_the_perfect_nodes(size: int) -> None:
    stored: dict[NodeId, bytes] = {}
    for i in range(size):
        stored[(0, i)] = leaf_hash(ENTRIES[i])
        for level, index in completed_nodes(i):
            left, right = stored[(level - 1, 2 * index)], stored[(level - 1, 2 * index + 1)]
            stored[(level, index)] = node_hash(left, right)
    small = MerkleLevels.from_leaf_hashes([leaf_hash(e) for e in ENTRIES[:size]])
    assert stored == dict(small.nodes())
    assert root_hash(size, small.get_nodes) == ref_mth(ENTRIES[:size])


# -- unit tests -----------------------------------------------------------------------


def test_completed_nodes() -> None:
    assert completed_nodes(0) == []
    assert completed_nodes(1) == [(1, 0)]
    assert completed_nodes(2) == []
    assert completed_nodes(3) == [(1, 1), (2, 0)]
    assert completed_nodes(7) == [(1, 3), (2, 1), (3, 0)]
    assert completed_nodes(11) == [(1, 5), (2, 2)]


def test_range_and_root_nodes() -> None:
    assert range_nodes(0, 1) == [(0, 0)]
    assert range_nodes(0, 6) == [(2, 0), (1, 2)]
    assert range_nodes(4, 7) == [(1, 2), (0, 6)]
    assert range_nodes(8, 13) == [(2, 2), (0, 12)]
    assert range_nodes(16, 32) == [(4, 1)]
    assert root_nodes(0) == []
    assert root_nodes(7) == [(2, 0), (1, 2), (0, 6)]
    assert root_nodes(300) == [(8, 0), (5, 8), (3, 36), (2, 74)]
    for start, end in [(1, 3), (2, 6), (4, 12), (3, 3), (5, 4), (-1, 0)]:
        with pytest.raises(MerkleError):
            range_nodes(start, end)
    with pytest.raises(MerkleError):
        root_nodes(-1)


def test_fold() -> None:
    a, b, c = (_sha(bytes([i])) for i in range(3))
    assert fold([a]) == a
    assert fold([a, b, c]) == node_hash(a, node_hash(b, c))
    with pytest.raises(MerkleError):
        fold([])


def test_proof_node_layout() -> None:
    assert inclusion_proof_nodes(0, 1) == []
    assert inclusion_proof_nodes(0, 7) == [[(0, 1)], [(1, 1)], [(1, 2), (0, 6)]]
    assert inclusion_proof_nodes(6, 7) == [[(1, 2)], [(2, 0)]]
    assert consistency_proof_nodes(3, 7) == [[(0, 2)], [(0, 3)], [(1, 0)], [(1, 2), (0, 6)]]
    assert consistency_proof_nodes(4, 7) == [[(1, 2), (0, 6)]]
    assert consistency_proof_nodes(0, 7) == consistency_proof_nodes(7, 7) == []


def test_argument_errors() -> None:
    for index, size in [(0, 0), (5, 5), (-1, 3)]:
        with pytest.raises(MerkleError):
            inclusion_proof_nodes(index, size)
        with pytest.raises(MerkleError):
            verify_inclusion(EMPTY_ROOT, index, size, [], EMPTY_ROOT)
    for old, new in [(5, 4), (-1, 3), (1, 0)]:
        with pytest.raises(MerkleError):
            consistency_proof_nodes(old, new)
        with pytest.raises(MerkleError):
            verify_consistency(old, new, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(MerkleError):
        completed_nodes(-1)
    with pytest.raises(MerkleError):
        LEVELS.root_hash(MAX + 1)
    with pytest.raises(MerkleError):
        LEVELS.node((0, MAX))
    with pytest.raises(MerkleError):
        LEVELS.get_nodes([(9, 0)])
    with pytest.raises(MerkleError):
        MerkleLevels.from_leaf_hashes([b"short"])
    with pytest.raises(MerkleError):
        root_hash(3, lambda ids: {})
    with pytest.raises(MerkleError):
        inclusion_proof(0, 3, lambda ids: dict.fromkeys(ids, b"short"))


def test_trivial_consistency() -> None:
    root = LEVELS.root_hash(5)
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 5, root, root, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, root, [])
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, EMPTY_ROOT, [])
    assert not verify_consistency(5, 5, root, root, [root])
    assert not verify_consistency(1, 2, LEVELS.root_hash(1), LEVELS.root_hash(2), [])


def test_malformed_proof_elements_return_false() -> None:
    leaf, root = leaf_hash(ENTRIES[0]), LEVELS.root_hash(2)
    proof = [leaf_hash(ENTRIES[1])]
    assert verify_inclusion(leaf, 0, 2, proof, root)
    assert not verify_inclusion(leaf, 0, 2, [proof[0] + b"\x00"], root)
    assert not verify_inclusion(leaf, 0, 2, proof, root[:-1])
    assert not verify_inclusion(leaf[:-1], 0, 2, proof, root)
    assert not verify_inclusion(leaf, 0, 1, [], b"")
