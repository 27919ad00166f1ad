"""Restore verifies every chunk against the snapshot's index: a server sending wrong bytes
gives a clear error and leaves no output file."""

import hashlib

import pytest

from agent.http import Client
from agent.index import ZERO_DIGEST, checksum
from agent.restore import RestoreError, restore_snapshot

from .http_support import ScriptedServer

CS = 64 * 1024


def serve_image(image: bytes, sent: bytes):
    digests = b"".join(
        ZERO_DIGEST
        if not image[i : i + CS].strip(b"\0")
        else hashlib.sha256(image[i : i + CS]).digest()
        for i in range(0, len(image), CS)
    )
    total = checksum(CS, len(image), digests)
    snapshot = {"id": "s1", "state": "complete", "index_checksum": total}
    headers = {"X-Chunk-Size": str(CS), "X-Disk-Size": str(len(image)), "X-Index-Checksum": total}
    return ScriptedServer([(200, snapshot), (200, digests, headers), (206, sent)])


def test_a_chunk_that_does_not_match_its_digest_fails_the_restore(tmp_path):
    image = bytes(range(256)) * (3 * CS // 256)
    damaged = bytearray(image)
    damaged[CS + 5] ^= 1
    out = tmp_path / "out.img"
    with (
        serve_image(image, bytes(damaged)) as server,
        pytest.raises(RestoreError, match=r"chunk 1 .* does not match its index digest"),
    ):
        restore_snapshot(Client(server.url, retries=0), "s1", str(out), threads=1)
    assert not out.exists()
    assert not (tmp_path / "out.img.partial").exists()


def test_zero_chunks_are_not_fetched_and_the_file_is_exact(tmp_path):
    image = bytes(CS) + b"\x07" * CS + bytes(CS)
    out = tmp_path / "out.img"
    out.write_bytes(b"old content that must go")
    with serve_image(image, b"\x07" * CS) as server:
        report = restore_snapshot(Client(server.url, retries=0), "s1", str(out), threads=2)
        ranges = [h.get("Range") for _, path, _, h in server.requests if "image" in path]
    assert out.read_bytes() == image
    assert ranges == [f"bytes={CS}-{2 * CS - 1}"]
    assert report["zero_chunks"] == 2 and report["bytes_received"] == CS
