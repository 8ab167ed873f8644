"""RFC 9162 Merkle tree hashes and proofs, served from stored perfect subtrees.

The log keeps the hash of every *complete perfect* subtree in a table, keyed by
``(level, index)``: the subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``.
Storing them as leaves arrive (:func:`completed_nodes`) lets a root, an inclusion
proof (RFC 9162 §2.1.3.1) or a consistency proof (§2.1.4.1) be assembled from
O(log n) rows fetched in one query, instead of rehashing the log on every request.

This works because every subtree hash MTH(D[a:b]) that the RFC recursion (§2.1.1)
visits starts at an offset aligned to its width: it is the right fold, with the
interior-node hash, of the perfect subtrees in the binary decomposition of
``b - a`` laid out from ``a``, largest first (:func:`range_nodes`).

Verification (§2.1.3.2 and §2.1.4.2) follows the RFC's iterative algorithms step
by step, so that an auditor can check this file against the text. Hashing is the
RFC 6962/9162 SHA-256 scheme whose 0x00/0x01 prefixes (§2.1.1) stop a leaf from
being passed off as an interior node (second-preimage attack).

This file is copied verbatim into the offline auditor bundle, so it imports only
the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeAlias

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleError",
    "MerkleLevels",
    "NodeId",
    "NodeSource",
    "completed_nodes",
    "consistency_proof",
    "consistency_proof_nodes",
    "fold",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "root_hash",
    "root_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: int = 32
NodeId: TypeAlias = tuple[int, int]
"""``(level, index)``: perfect subtree over leaves ``[index << level, (index + 1) << level)``."""
NodeSource: TypeAlias = Callable[[Sequence[NodeId]], Mapping[NodeId, bytes]]
"""Fetches a batch of stored node hashes at once (one SQL query for the caller)."""
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) of RFC 9162 §2.1.1: the hash of the empty string."""

_sha256 = hashlib.sha256


class MerkleError(ValueError):
    """Arguments that name no tree, leaf, node or proof (e.g. index >= size)."""


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d), RFC 9162 §2.1.1."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), RFC 9162 §2.1.1."""
    return _sha256(b"\x01" + left + right).digest()


def _split(width: int) -> int:
    """The k of RFC 9162 §2.1.1: the largest power of two smaller than ``width`` (>= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is not in a tree of size {size}")


def _check_sizes(old_size: int, new_size: int) -> None:
    if not 0 <= old_size <= new_size:
        raise MerkleError(f"tree sizes must satisfy 0 <= old ({old_size}) <= new ({new_size})")


def completed_nodes(leaf_index: int) -> list[NodeId]:
    """Parents (level >= 1) that become complete when leaf ``leaf_index`` is appended.

    Bottom-up, so each can be hashed from its two children ``(level - 1, 2 * index)``
    and ``(level - 1, 2 * index + 1)``, the right one having just been completed.
    """
    if leaf_index < 0:
        raise MerkleError(f"leaf index must be >= 0, got {leaf_index}")
    nodes: list[NodeId] = []
    level, index = 0, leaf_index
    while index & 1:
        level, index = level + 1, index >> 1
        nodes.append((level, index))
    return nodes


def range_nodes(start: int, end: int) -> list[NodeId]:
    """Perfect nodes, left to right, whose right fold is MTH(D[start:end]).

    The decomposition is correct exactly when ``start`` is a multiple of the largest
    power of two <= ``end - start``; the RFC recursion always guarantees this (it
    even guarantees a multiple of the smallest power of two >= ``end - start``).
    """
    if not 0 <= start < end:
        raise MerkleError(f"[{start}, {end}) is not a non-empty range of leaves")
    width = end - start
    top = width.bit_length() - 1
    if start & ((1 << top) - 1):
        raise MerkleError(
            f"[{start}, {end}) is not aligned to {1 << top}: no RFC 9162 subtree starts there"
        )
    nodes: list[NodeId] = []
    for level in range(top, -1, -1):
        if width >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold of :func:`range_nodes`' hashes (given left to right) into one subtree hash."""
    if not hashes:
        raise MerkleError("cannot fold an empty list of hashes")
    acc = hashes[-1]
    for i in range(len(hashes) - 2, -1, -1):
        acc = node_hash(hashes[i], acc)
    return acc


def root_nodes(size: int) -> list[NodeId]:
    """The perfect nodes whose fold is the root of a tree of ``size`` leaves ([] for 0)."""
    if size < 0:
        raise MerkleError(f"tree size must be >= 0, got {size}")
    return range_nodes(0, size) if size else []


def inclusion_proof_nodes(index: int, size: int) -> list[list[NodeId]]:
    """Node groups for PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf upward.

    Walks the recursion top-down recording the sibling subtree at each split;
    only the first right-hand sibling can be imperfect, so the total is O(log n).
    """
    _check_index(index, size)
    siblings: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            siblings.append((mid, hi))
            hi = mid
        else:
            siblings.append((lo, mid))
            lo = mid
    return [range_nodes(a, b) for a, b in reversed(siblings)]


def consistency_proof_nodes(old_size: int, new_size: int) -> list[list[NodeId]]:
    """Node groups for PROOF(old_size, D[0:new_size]) = SUBPROOF(m, D_n, true), §2.1.4.1.

    Empty when ``old_size`` is 0 or equals ``new_size`` (trivially consistent).
    """
    _check_sizes(old_size, new_size)
    if old_size in (0, new_size):
        return []
    siblings: list[tuple[int, int]] = []
    lo, hi, m, whole_old_tree = 0, new_size, old_size, True
    while m != hi - lo:
        mid = lo + _split(hi - lo)
        if m <= mid - lo:
            siblings.append((mid, hi))
            hi = mid
        else:
            siblings.append((lo, mid))
            m -= mid - lo
            lo, whole_old_tree = mid, False
    # SUBPROOF(m, D[m], b) is [] when b is still true, else [MTH(D[m])].
    groups = [] if whole_old_tree else [range_nodes(lo, hi)]
    groups.extend(range_nodes(a, b) for a, b in reversed(siblings))
    return groups


def _resolve(groups: list[list[NodeId]], get_nodes: NodeSource) -> list[bytes]:
    found = get_nodes([node for group in groups for node in group])
    out: list[bytes] = []
    for group in groups:
        hashes: list[bytes] = []
        for node in group:
            digest = found.get(node)
            if digest is None or len(digest) != HASH_SIZE:
                raise MerkleError(f"the node source has no valid hash for node {node}")
            hashes.append(digest)
        out.append(fold(hashes))
    return out


def root_hash(size: int, get_nodes: NodeSource) -> bytes:
    """MTH(D[0:size]) from O(log n) stored nodes; EMPTY_ROOT for size 0."""
    nodes = root_nodes(size)
    return _resolve([nodes], get_nodes)[0] if nodes else EMPTY_ROOT


def inclusion_proof(index: int, size: int, get_nodes: NodeSource) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof for leaf ``index`` in a tree of ``size`` leaves."""
    return _resolve(inclusion_proof_nodes(index, size), get_nodes)


def consistency_proof(old_size: int, new_size: int, get_nodes: NodeSource) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof from ``old_size`` to ``new_size``."""
    return _resolve(consistency_proof_nodes(old_size, new_size), get_nodes)


def _well_formed(*hashes: bytes, proof: Sequence[bytes]) -> bool:
    return all(len(h) == HASH_SIZE for h in hashes) and all(len(p) == HASH_SIZE for p in proof)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` put leaf hash ``leaf`` at ``index`` under ``root``?

    False for any proof that does not verify, including malformed ones; raises
    :class:`MerkleError` only if ``index`` cannot be in a tree of ``size``.
    """
    _check_index(index, size)
    if not _well_formed(leaf, root, proof=proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree with ``new_root`` an extension of the one with ``old_root``?

    Size 0 is consistent with everything (its root must be EMPTY_ROOT) and equal
    sizes need equal roots; both take an empty proof. Raises :class:`MerkleError`
    only for impossible sizes (negative, or old > new).
    """
    _check_sizes(old_size, new_size)
    if not _well_formed(old_root, new_root, proof=proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:  # step 1
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: first is an exact power of 2
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root  # step 7


class MerkleLevels:
    """Every perfect node of an in-memory log, for verifying a whole log in bulk.

    ``levels[l][i]`` is node ``(l, i)``; level 0 holds the leaf hashes.
    """

    __slots__ = ("_levels",)

    def __init__(self, levels: list[list[bytes]]) -> None:
        self._levels = levels

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Sequence[bytes]) -> MerkleLevels:
        """Hash every complete pair, level by level (one inlined SHA-256 per node)."""
        row = list(leaf_hashes)
        if any(len(h) != HASH_SIZE for h in row):
            raise MerkleError(f"every leaf hash must be {HASH_SIZE} bytes")
        levels = [row]
        sha, prefix = _sha256, b"\x01"
        while len(row) > 1:
            row = [sha(prefix + a + b).digest() for a, b in zip(row[::2], row[1::2], strict=False)]
            levels.append(row)
        return cls(levels)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def node(self, node_id: NodeId) -> bytes:
        level, index = node_id
        if 0 <= level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        raise MerkleError(f"node {node_id} is not a complete perfect subtree of this tree")

    def nodes(self) -> Iterator[tuple[NodeId, bytes]]:
        for level, row in enumerate(self._levels):
            for index, digest in enumerate(row):
                yield (level, index), digest

    def root_hash(self, size: int) -> bytes:
        """Root of the first ``size`` leaves, from O(log n) stored nodes."""
        if not 0 <= size <= self.size:
            raise MerkleError(f"size {size} is not between 0 and {self.size}")
        nodes = root_nodes(size)
        return fold([self.node(n) for n in nodes]) if nodes else EMPTY_ROOT

    def get_nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """A :data:`NodeSource`; raises :class:`MerkleError` for a node that does not exist."""
        return {node_id: self.node(node_id) for node_id in ids}
