"""The agent's index checksum and delta must equal the server's to the bit; the cache is
trusted only when its checksum is the expected one."""

import hashlib
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.index import (
    ZERO_DIGEST,
    DiskIndex,
    IndexCache,
    changes_from,
    checksum,
    encode_changes,
)
from storage.store.index import Index

CS = 64 * 1024


def digests_for(count, seed=b""):
    return b"".join(
        ZERO_DIGEST if i % 5 == 0 else hashlib.sha256(seed + bytes([i % 256, i // 256])).digest()
        for i in range(count)
    )


@settings(max_examples=60, deadline=None)
@given(
    chunk_shift=st.integers(min_value=16, max_value=26),
    disk_size=st.integers(min_value=0, max_value=40 * 64 * 1024),
    seed=st.binary(max_size=4),
)
def test_checksum_equals_the_servers(chunk_shift, disk_size, seed):
    chunk_size = 1 << chunk_shift
    count = -(-disk_size // chunk_size)
    digests = digests_for(count, seed)
    assert (
        checksum(chunk_size, disk_size, digests) == Index(chunk_size, disk_size, digests).checksum()
    )


@settings(max_examples=60, deadline=None)
@given(
    base_count=st.integers(min_value=0, max_value=70),
    new_count=st.integers(min_value=0, max_value=70),
    changed=st.sets(st.integers(min_value=0, max_value=69)),
)
def test_changes_equal_the_servers_and_rebuild_the_index(base_count, new_count, changed):
    base = digests_for(base_count, b"a")
    new = bytearray(digests_for(new_count, b"a"))
    for pos in changed:
        if pos < new_count:
            new[pos * 32 : pos * 32 + 32] = hashlib.sha256(b"new%d" % pos).digest()
    new = bytes(new)
    base_index = Index(CS, base_count * CS, base)
    new_index = Index(CS, new_count * CS, new)
    ours = changes_from(new, base)
    assert ours == new_index.changes_from(base_index)
    # What the commit sends rebuilds the new index on the server.
    assert Index.apply(base_index, new_count * CS, ours) == new_index
    assert len(encode_changes(ours)) == 40 * len(ours)


def test_cache_round_trip_and_refusals(tmp_path):
    cache = IndexCache(tmp_path)
    index = DiskIndex(CS, 10 * CS - 5, digests_for(10))
    cache.save(7, "vda", index)
    assert cache.load(7, "vda", index.checksum()) == index
    # Another expected checksum (the server's base is another snapshot): not used.
    assert cache.load(7, "vda", "0" * 64) is None
    # Another disk or machine: nothing cached.
    assert cache.load(7, "vdb", index.checksum()) is None
    assert cache.load(8, "vda", index.checksum()) is None


def test_a_damaged_cache_file_is_not_trusted(tmp_path):
    cache = IndexCache(tmp_path)
    index = DiskIndex(CS, 10 * CS, digests_for(10))
    cache.save(1, "disk/with:odd chars", index)
    (path,) = (tmp_path / "indexes").iterdir()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the header still names the right checksum; the body is wrong
    path.write_bytes(bytes(data))
    assert cache.load(1, "disk/with:odd chars", index.checksum()) is None
    path.write_bytes(bytes(data[:20]))
    assert cache.load(1, "disk/with:odd chars", index.checksum()) is None
    assert not [p for p in os.listdir(tmp_path / "indexes") if p.startswith(".idx-")]
