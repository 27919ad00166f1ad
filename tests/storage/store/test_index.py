"""Index: checksum, changes and application, the file format (full and delta), chains."""

import hashlib
import itertools
import os
import struct

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.store.errors import IndexCorrupt
from storage.store.index import (
    DELTA_MAX_DEPTH,
    KIND_DELTA,
    KIND_FULL,
    ZERO_DIGEST,
    Index,
    IndexFile,
    decode_index_file,
    encode_index_file,
    materialize,
    plan_index_file,
)

CS = 64 * 1024


def d(n: int) -> bytes:
    """A distinct, deterministic 32-byte digest."""
    return hashlib.sha256(n.to_bytes(8, "big")).digest()


def index_of(values: list[int | None], disk_size: int | None = None, chunk_size: int = CS):
    """An index with digest d(v) per entry (None: the zero chunk)."""
    size = len(values) * chunk_size if disk_size is None else disk_size
    return Index.from_digests(
        chunk_size, size, [ZERO_DIGEST if v is None else d(v) for v in values]
    )


def test_checksum_is_pinned_and_representation_independent():
    digests = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(3))
    index = Index(CS, 3 * CS - 100, digests)
    # Pinned: agents compute the same value; changing the definition breaks the protocol.
    expected = "0a3a9b73b384eb6cd18e0cb96140cccc35b8a4808cc908e810aface63ea035a8"
    assert index.checksum() == expected
    assert (
        hashlib.sha256(b"ACIDX1" + struct.pack(">IQ", CS, 3 * CS - 100) + digests).hexdigest()
        == expected
    )
    assert Index(CS, 0, b"").checksum() == (
        "e1ed29f66d3487fb02241213e1737f68e34bc96028b0274ef0b37d8105ac86f0"
    )
    full = decode_index_file(encode_index_file(IndexFile.full(index)))
    assert materialize([full], expected_checksum=expected) == index
    # Disk size and chunk size are part of the checksum.
    assert Index(CS, 3 * CS - 99, digests).checksum() != expected
    assert Index(2 * CS, 5 * CS, digests).checksum() != expected


def test_validation():
    with pytest.raises(ValueError, match="power of two"):
        Index(3 * CS, 0, b"")
    with pytest.raises(ValueError, match="power of two"):
        Index(CS // 2, 0, b"")
    with pytest.raises(ValueError, match="power of two"):
        Index(128 << 20, 0, b"")
    with pytest.raises(ValueError, match="disk size"):
        Index(CS, -1, b"")
    with pytest.raises(ValueError, match="entries need"):
        Index(CS, CS + 1, ZERO_DIGEST)  # 2 entries, 1 digest
    with pytest.raises(ValueError):
        Index.from_digests(CS, CS, [b"short"])


def test_entries_and_access():
    index = index_of([1, None, 3], disk_size=2 * CS + 10)
    assert len(index) == 3
    assert index[0] == d(1) and index[1] == ZERO_DIGEST and index[-1] == d(3)
    with pytest.raises(IndexError):
        index[3]
    assert list(index) == [d(1), ZERO_DIGEST, d(3)]
    assert index.entry_range(0) == (0, CS)
    assert index.entry_range(2) == (2 * CS, 10)
    assert index.referenced() == {d(1), d(3)}
    assert index.referenced_hex() == {d(1).hex(), d(3).hex()}
    assert Index.zeros(CS, 5 * CS).referenced() == set()


def test_the_empty_disk():
    empty = Index(CS, 0, b"")
    assert len(empty) == 0
    assert list(empty) == []
    assert empty.changes_from(empty) == []
    grown = index_of([1, 2])
    assert grown.changes_from(empty) == [(0, d(1)), (1, d(2))]
    assert (
        grown.changes_from(empty) and Index.apply(empty, 2 * CS, grown.changes_from(empty)) == grown
    )
    assert Index.apply(grown, 0, []) == empty
    for f in (IndexFile.full(empty), IndexFile.delta(empty, grown)):
        decoded = decode_index_file(encode_index_file(f))
        assert decoded == f
    chain = [IndexFile.full(grown), IndexFile.delta(empty, grown)]
    assert materialize(chain, expected_checksum=empty.checksum()) == empty


def test_changes_from_finds_exactly_the_differences():
    base = index_of(list(range(100)))
    new_values = list(range(100))
    for pos in (0, 15, 16, 17, 63, 64, 99):
        new_values[pos] = 1000 + pos
    new = index_of(new_values)
    changes = new.changes_from(base)
    assert changes == [(p, d(1000 + p)) for p in (0, 15, 16, 17, 63, 64, 99)]
    assert Index.apply(base, new.disk_size, changes) == new
    assert new.changes_from(new) == []
    with pytest.raises(ValueError, match="chunk sizes"):
        new.changes_from(index_of(list(range(100)), chunk_size=2 * CS))


def test_disk_grows_and_shrinks():
    base = index_of([1, 2, 3], disk_size=2 * CS + 5)
    grown = index_of([1, 2, 4, 5, None], disk_size=5 * CS)
    changes = grown.changes_from(base)
    assert changes == [(2, d(4)), (3, d(5)), (4, ZERO_DIGEST)]  # new positions always listed
    assert Index.apply(base, grown.disk_size, changes) == grown
    shrunk = index_of([1, 7], disk_size=CS + 1)
    assert shrunk.changes_from(grown) == [(1, d(7))]
    assert Index.apply(grown, shrunk.disk_size, shrunk.changes_from(grown)) == shrunk
    same_entries_other_size = index_of([1, 2, 3], disk_size=3 * CS)
    assert same_entries_other_size.changes_from(base) == []  # content equal, size governs
    assert Index.apply(base, 3 * CS, []) == same_entries_other_size


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ([(1, d(9)), (0, d(8))], "out of order"),
        ([(1, d(9)), (1, d(8))], "out of order"),
        ([(5, d(9))], "outside"),
        ([(-1, d(9))], "outside"),
        ([(0, b"short")], "32 bytes"),
    ],
)
def test_apply_rejects_bad_changes(changes, message):
    with pytest.raises(ValueError, match=message):
        Index.apply(index_of([1, 2, 3]), 3 * CS, changes)


def test_apply_needs_every_new_position_of_a_grown_disk():
    base = index_of([1, 2])
    with pytest.raises(ValueError, match="grew"):
        Index.apply(base, 4 * CS, [(2, d(3))])
    assert Index.apply(base, 4 * CS, [(2, d(3)), (3, d(4))]) == index_of([1, 2, 3, 4])


values_strategy = st.lists(st.one_of(st.none(), st.integers(0, 6)), max_size=80)


@settings(max_examples=200, deadline=None)
@given(base_values=values_strategy, new_values=values_strategy, tail=st.integers(0, CS - 1))
def test_changes_apply_round_trip(base_values, new_values, tail):
    base = index_of(base_values)
    size = max(0, len(new_values) * CS - tail) if new_values else 0
    new = index_of(new_values, disk_size=size)
    changes = new.changes_from(base)
    expected = [(i, new[i]) for i in range(len(new)) if i >= len(base) or new[i] != base[i]]
    assert changes == expected
    assert Index.apply(base, new.disk_size, changes) == new
    # ... and through a delta file and a chain.
    full = decode_index_file(encode_index_file(IndexFile.full(base)))
    delta = decode_index_file(encode_index_file(IndexFile.delta(new, base)))
    assert delta.changes() == changes
    assert materialize([full, delta], expected_checksum=new.checksum()) == new


def test_full_and_delta_file_round_trips():
    base = index_of([1, None, 3, 4], disk_size=4 * CS - 7)
    new = index_of([1, 2, 3, 4, 5], disk_size=5 * CS)
    full = IndexFile.full(base)
    data = encode_index_file(full)
    assert data[:8] == b"ACIDXF1\x00"
    decoded = decode_index_file(data)
    assert decoded == full
    assert decoded.kind == KIND_FULL and decoded.is_full
    assert decoded.base_checksum_hex is None
    assert decoded.to_index() == base
    delta = decode_index_file(encode_index_file(IndexFile.delta(new, base)))
    assert delta.kind == KIND_DELTA and not delta.is_full
    assert delta.base_checksum_hex == base.checksum()
    assert delta.change_count == 2 and delta.changes() == [(1, d(2)), (4, d(5))]
    assert (delta.chunk_size, delta.disk_size, delta.entries) == (CS, 5 * CS, 5)
    with pytest.raises(ValueError, match="materialize"):
        delta.to_index()


def test_materialize_a_chain():
    versions = [
        index_of([1, 2, 3, 4]),
        index_of([1, 9, 3, 4, 5, 6]),  # grows
        index_of([1, 9, 3]),  # shrinks
        index_of([1, 9, 8], disk_size=3 * CS - 1),
    ]
    chain = [IndexFile.full(versions[0])]
    for prev, cur in itertools.pairwise(versions):
        chain.append(decode_index_file(encode_index_file(IndexFile.delta(cur, prev))))
        assert materialize(chain, expected_checksum=cur.checksum()) == cur
    final = versions[-1].checksum()
    with pytest.raises(IndexCorrupt, match="expected checksum"):
        materialize(chain, expected_checksum=versions[-2].checksum())
    with pytest.raises(IndexCorrupt, match="another index"):  # a delta skipped
        materialize([chain[0], chain[2], chain[3]], expected_checksum=final)
    with pytest.raises(IndexCorrupt, match="another index"):  # wrong order
        materialize([chain[0], chain[2], chain[1], chain[3]], expected_checksum=final)
    with pytest.raises(IndexCorrupt, match="start with a full"):
        materialize(chain[1:], expected_checksum=final)
    with pytest.raises(IndexCorrupt, match="only deltas"):
        materialize([chain[0], IndexFile.full(versions[1])], expected_checksum=final)
    with pytest.raises(IndexCorrupt, match="empty"):
        materialize([], expected_checksum=final)
    other_chunk = IndexFile.full(index_of([1, 2, 3, 4], chunk_size=2 * CS))
    with pytest.raises(IndexCorrupt, match="chunk size"):
        materialize([other_chunk, chain[1]], expected_checksum=final)


def test_materialize_rejects_deltas_missing_new_positions():
    base = index_of([1, 2])
    body = struct.pack(">Q", 1) + struct.pack(">Q32s", 2, d(3))  # grows to 4, gives only 1
    bad = IndexFile(KIND_DELTA, CS, 4 * CS, 4, base.checksum_raw(), body)
    with pytest.raises(IndexCorrupt, match="grew"):
        materialize([IndexFile.full(base), bad], expected_checksum=base.checksum())


def test_plan_index_file():
    base = index_of(list(range(100)))
    few = index_of([*range(24), *range(1000, 1001), *range(25, 100)])
    planned, depth = plan_index_file(few, base, 3)
    assert planned.kind == KIND_DELTA and depth == 4
    many = index_of([*range(1000, 1025), *range(25, 100)])  # 25 % changed: full
    assert plan_index_file(many, base, 0) == (IndexFile.full(many), 0)
    assert plan_index_file(few, base, DELTA_MAX_DEPTH) == (IndexFile.full(few), 0)
    assert plan_index_file(few, None, 0) == (IndexFile.full(few), 0)
    assert plan_index_file(Index(CS, 0, b""), base, 0)[0].is_full
    exactly_below = index_of([*range(1000, 1024), *range(24, 100)])  # 24 % changed: delta
    assert plan_index_file(exactly_below, base, 0)[0].kind == KIND_DELTA
    grown = index_of([*range(100), *range(1000, 1040)])  # 40 new entries of 140: full
    assert plan_index_file(grown, base, 0) == (IndexFile.full(grown), 0)
    grown_a_little = index_of([*range(100), 1000])
    planned, _ = plan_index_file(grown_a_little, base, 0)
    assert planned.changes() == [(100, d(1000))]


def small_file(kind: str) -> bytes:
    base = index_of([1, None, 3])
    if kind == "full":
        return encode_index_file(IndexFile.full(base))
    return encode_index_file(IndexFile.delta(index_of([1, 2, 3, 4]), base))


@pytest.mark.parametrize("kind", ["full", "delta"])
def test_every_flipped_byte_and_every_truncation_is_corrupt(kind):
    data = small_file(kind)
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        with pytest.raises(IndexCorrupt):
            decode_index_file(bytes(damaged))
    for length in range(len(data)):
        with pytest.raises(IndexCorrupt):
            decode_index_file(data[:length])


def forge(
    kind=KIND_FULL,
    chunk_size=CS,
    disk_size=2 * CS,
    entries=2,
    base=ZERO_DIGEST,
    body=None,
    body_len=None,
    magic=b"ACIDXF1\x00",
):
    """A file with a VALID trailer around whatever header and body: structure checks only."""
    if body is None:
        body = d(1) + d(2)
    frame = body if isinstance(body, memoryview) else zstandard.ZstdCompressor().compress(body)
    frame = bytes(frame)
    length = len(frame) if body_len is None else body_len
    header = struct.pack(">8sBIQQ32sQ", magic, kind, chunk_size, disk_size, entries, base, length)
    return header + frame + hashlib.sha256(header + frame).digest()


def delta_body(records: list[tuple[int, bytes]], n: int | None = None) -> bytes:
    count = len(records) if n is None else n
    return struct.pack(">Q", count) + b"".join(struct.pack(">Q32s", p, x) for p, x in records)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"magic": b"ACIDXF2\x00"}, "magic"),
        ({"kind": 3}, "kind"),
        ({"chunk_size": 1000}, "power of two"),
        ({"entries": 3}, "entries"),
        ({"disk_size": 5 * CS}, "entries"),
        ({"body_len": 5}, "body length"),
        ({"base": d(5)}, "must not name a base"),
        ({"body": d(1)}, "body"),
        ({"body": d(1) * 3}, "body"),
        ({"body": memoryview(b"not zstd at all")}, "index body"),
        ({"kind": KIND_DELTA, "base": d(5), "body": b"\x00"}, "too short"),
        ({"kind": KIND_DELTA, "base": d(5), "body": delta_body([(0, d(1))], n=2)}, "records"),
        (
            {"kind": KIND_DELTA, "base": d(5), "body": delta_body([(0, d(1)), (1, d(2))], n=1)},
            "records",
        ),
        ({"kind": KIND_DELTA, "base": d(5), "body": delta_body([(0, d(1))] * 3)}, "limit"),
        ({"kind": KIND_DELTA, "base": d(5), "body": delta_body([(1, d(1)), (0, d(1))])}, "order"),
        ({"kind": KIND_DELTA, "base": d(5), "body": delta_body([(1, d(1)), (1, d(1))])}, "order"),
        ({"kind": KIND_DELTA, "base": d(5), "body": delta_body([(2, d(1))])}, "beyond"),
    ],
)
def test_structure_errors_with_a_valid_trailer(fields, message):
    with pytest.raises(IndexCorrupt, match=message):
        decode_index_file(forge(**fields))


def test_forged_file_helper_is_valid_when_unchanged():
    assert decode_index_file(forge()).to_index() == index_of([1, 2])
    good_delta = forge(kind=KIND_DELTA, base=d(5), body=delta_body([(1, d(7))]))
    assert decode_index_file(good_delta).changes() == [(1, d(7))]


def test_a_million_entries():
    """1 TiB at 1 MiB chunks: the sizes the design is about (timings are in the report)."""
    entries = 1 << 20
    digests = bytearray(hashlib.sha256(b"seed").digest() * entries)
    base = Index(1 << 20, entries << 20, bytes(digests))
    for pos in range(0, entries, 100):  # 1 % changed
        digests[pos * 32 : pos * 32 + 32] = d(pos)
    new = Index(1 << 20, entries << 20, bytes(digests))
    changes = new.changes_from(base)
    assert len(changes) == len(range(0, entries, 100))
    delta = encode_index_file(IndexFile.delta(new, base, changes))
    assert len(delta) < 500 * 1024  # ~0.4 MiB, versus 32 MiB for a full index
    full = decode_index_file(encode_index_file(IndexFile.full(base)))
    chain = [full, decode_index_file(delta)]
    assert materialize(chain, expected_checksum=new.checksum()) == new
    assert plan_index_file(new, base, 0)[0].kind == KIND_DELTA
    rewritten = Index(1 << 20, entries << 20, os.urandom(entries * 32))
    assert plan_index_file(rewritten, base, 0)[0].is_full  # gives up early, no 1 Mi list
