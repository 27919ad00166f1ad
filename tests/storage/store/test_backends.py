"""ONE suite for every backend: local filesystem (fsync on and off) and S3 (moto server)."""

import hashlib
import os
import threading
import time

import pytest
from botocore.exceptions import ClientError

from storage.store.backends import ChunkBackend, ChunkStat
from storage.store.backends.local import LocalBackend
from storage.store.errors import BackendError, ChunkNotFound, NotFound, ObjectNotFound

from .conftest import leave_partial_write, stored_names


def hx(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


A, B, C = b"chunk A" * 100, b"chunk B" * 200, os.urandom(5 << 20)


def test_put_get_has_delete(backend: ChunkBackend, ns):
    assert not backend.has_chunk(ns, hx(A))
    backend.put_chunk(ns, hx(A), A)
    assert backend.has_chunk(ns, hx(A))
    assert backend.get_chunk(ns, hx(A)) == A
    backend.delete_chunk(ns, hx(A))
    assert not backend.has_chunk(ns, hx(A))
    with pytest.raises(ChunkNotFound):
        backend.get_chunk(ns, hx(A))
    backend.delete_chunk(ns, hx(A))  # deleting a missing chunk is fine


def test_large_blob_and_overwrite(backend, ns):
    backend.put_chunk(ns, hx(C), C)
    assert backend.get_chunk(ns, hx(C)) == C
    backend.put_chunk(ns, hx(C), b"replacement")  # overwrite is allowed (same address)
    assert backend.get_chunk(ns, hx(C)) == b"replacement"
    assert [s.size for s in backend.iter_chunks(ns)] == [len(b"replacement")]


def test_missing_chunk_errors_are_store_errors(backend, ns):
    with pytest.raises(NotFound):
        backend.get_chunk(ns, hx(b"nothing"))
    with pytest.raises(ObjectNotFound):
        backend.get_object(ns, "indexes/nothing.idx")


def test_iter_chunks(backend, ns):
    assert list(backend.iter_chunks(ns)) == []  # a namespace that was never written
    before = time.time()
    for data in (A, B):
        backend.put_chunk(ns, hx(data), data)
    stats = sorted(backend.iter_chunks(ns))
    assert [(s.digest_hex, s.size) for s in stats] == sorted([(hx(A), len(A)), (hx(B), len(B))])
    for stat in stats:
        assert isinstance(stat, ChunkStat)
        assert before - 2 <= stat.mtime <= time.time() + 2  # S3 has second resolution


def test_missing_chunks_batch(backend, ns):
    present = [bytes([i]) * 10 for i in range(0, 40, 2)]
    for data in present:
        backend.put_chunk(ns, hx(data), data)
    asked = [hx(bytes([i]) * 10) for i in range(40)]
    assert backend.missing_chunks(ns, asked) == [hx(bytes([i]) * 10) for i in range(1, 40, 2)]
    assert backend.missing_chunks(ns, []) == []


def test_quarantine(backend, ns):
    backend.put_chunk(ns, hx(A), b"damaged bytes")
    backend.put_chunk(ns, hx(B), B)
    backend.quarantine_chunk(ns, hx(A), "CRC mismatch found by verify")
    assert not backend.has_chunk(ns, hx(A))
    with pytest.raises(ChunkNotFound):
        backend.get_chunk(ns, hx(A))
    assert [s.digest_hex for s in backend.iter_chunks(ns)] == [hx(B)]
    [entry] = backend.iter_quarantine(ns)
    assert entry.digest_hex == hx(A)
    assert entry.name.startswith(hx(A) + ".")
    assert entry.size == len(b"damaged bytes")
    assert entry.reason == "CRC mismatch found by verify"
    # The agent re-uploads: the address is free for a fresh copy, the forensic copy stays.
    backend.put_chunk(ns, hx(A), A)
    assert backend.get_chunk(ns, hx(A)) == A
    backend.quarantine_chunk(ns, hx(A), "second time")
    assert sorted(e.reason for e in backend.iter_quarantine(ns)) == [
        "CRC mismatch found by verify",
        "second time",
    ]
    with pytest.raises(ChunkNotFound):
        backend.quarantine_chunk(ns, hx(b"never stored"), "x")


def test_objects(backend, ns):
    backend.put_object(ns, "indexes/b.idx", b"index b")
    backend.put_object(ns, "indexes/a.idx", b"index a")
    backend.put_object(ns, "indexes-old/c.idx", b"c")
    backend.put_object(ns, "top", b"top")
    backend.put_object(ns, "indexes/deep/er/d.idx", b"d")
    assert backend.get_object(ns, "indexes/a.idx") == b"index a"
    backend.put_object(ns, "indexes/a.idx", b"index a v2")
    assert backend.get_object(ns, "indexes/a.idx") == b"index a v2"
    listed = list(backend.iter_objects(ns, "indexes/"))
    assert [(o.name, o.size) for o in listed] == [
        ("indexes/a.idx", 10),
        ("indexes/b.idx", 7),
        ("indexes/deep/er/d.idx", 1),
    ]
    assert [o.name for o in backend.iter_objects(ns, "indexes")] == [
        "indexes-old/c.idx",
        "indexes/a.idx",
        "indexes/b.idx",
        "indexes/deep/er/d.idx",
    ]
    assert [o.name for o in backend.iter_objects(ns, "indexes/de")] == ["indexes/deep/er/d.idx"]
    assert len(list(backend.iter_objects(ns))) == 5
    assert list(backend.iter_objects(ns, "nothing/")) == []
    backend.delete_object(ns, "indexes/a.idx")
    backend.delete_object(ns, "indexes/a.idx")  # missing is fine
    with pytest.raises(ObjectNotFound):
        backend.get_object(ns, "indexes/a.idx")
    assert [o.name for o in backend.iter_objects(ns, "indexes/")] == [
        "indexes/b.idx",
        "indexes/deep/er/d.idx",
    ]
    # Objects and chunks are separate spaces.
    assert list(backend.iter_chunks(ns)) == []


def test_namespaces_are_isolated(backend, ns, other_ns):
    backend.put_chunk(ns, hx(A), A)
    backend.put_object(ns, "indexes/x.idx", b"x")
    assert not backend.has_chunk(other_ns, hx(A))
    assert backend.missing_chunks(other_ns, [hx(A)]) == [hx(A)]
    with pytest.raises(ChunkNotFound):
        backend.get_chunk(other_ns, hx(A))
    with pytest.raises(ObjectNotFound):
        backend.get_object(other_ns, "indexes/x.idx")
    assert list(backend.iter_chunks(other_ns)) == []
    assert list(backend.iter_objects(other_ns, "")) == []
    with pytest.raises(ChunkNotFound):
        backend.quarantine_chunk(other_ns, hx(A), "x")
    backend.delete_chunk(other_ns, hx(A))
    backend.delete_object(other_ns, "indexes/x.idx")
    assert backend.get_chunk(ns, hx(A)) == A
    assert backend.get_object(ns, "indexes/x.idx") == b"x"
    assert list(backend.iter_quarantine(ns)) == list(backend.iter_quarantine(other_ns)) == []


BAD_DIGESTS = [
    "",
    "../" * 21 + "a",
    hx(A).upper(),
    hx(A)[:63],
    hx(A) + "0",
    hx(A)[:62] + "/x",
    "/" + hx(A)[1:],
    hx(A)[:63] + "\n",
    hx(A)[:60] + "%2e.",
]
BAD_NAMESPACES = [
    "",
    "..",
    "../" + "0" * 29,
    "0" * 31,
    "0" * 33,
    "A" * 32,
    "0" * 16 + "/" + "0" * 15,
    "/tmp/" + "0" * 27,
]
BAD_OBJECT_NAMES = [
    "",
    "..",
    "../escape",
    "indexes/../../escape",
    "/etc/passwd",
    "indexes//x",
    "indexes/",
    ".hidden",
    "indexes/.x.tmp",
    "a\\b",
    "a b",
    "a\x00b",
    "é",
    "x" * 600,
    "a" * 201,
    "indexes/a..b",
]


def _all_chunk_calls(backend, ns, digest):
    yield lambda: backend.put_chunk(ns, digest, b"x")
    yield lambda: backend.get_chunk(ns, digest)
    yield lambda: backend.delete_chunk(ns, digest)
    yield lambda: backend.has_chunk(ns, digest)
    yield lambda: backend.quarantine_chunk(ns, digest, "x")
    yield lambda: backend.missing_chunks(ns, [digest])


def _all_object_calls(backend, ns, name):
    yield lambda: backend.put_object(ns, name, b"x")
    yield lambda: backend.get_object(ns, name)
    yield lambda: backend.delete_object(ns, name)


def test_names_are_validated(backend, ns, tmp_path):
    backend.put_chunk(ns, hx(A), A)  # something that must survive
    for digest in BAD_DIGESTS:
        for call in _all_chunk_calls(backend, ns, digest):
            with pytest.raises(ValueError):
                call()
    for bad_ns in BAD_NAMESPACES:
        for call in _all_chunk_calls(backend, bad_ns, hx(A)):
            with pytest.raises(ValueError):
                call()
        for call in _all_object_calls(backend, bad_ns, "indexes/x.idx"):
            with pytest.raises(ValueError):
                call()
        with pytest.raises(ValueError):
            list(backend.iter_chunks(bad_ns))
        with pytest.raises(ValueError):
            list(backend.iter_objects(bad_ns, ""))
        with pytest.raises(ValueError):
            list(backend.iter_quarantine(bad_ns))
    for name in BAD_OBJECT_NAMES:
        for call in _all_object_calls(backend, ns, name):
            with pytest.raises(ValueError):
                call()
    for prefix in ["../", "/", "/etc", "a//", "..", "indexes/..", "a..b"]:
        with pytest.raises(ValueError):
            list(backend.iter_objects(ns, prefix))
    # Nothing was written anywhere by the failed calls, and the good chunk is intact.
    names = stored_names(backend, tmp_path)
    assert len(names) == 1 and names[0].endswith(hx(A))
    assert backend.get_chunk(ns, hx(A)) == A


def test_a_crashed_write_is_invisible(backend, ns):
    leave_partial_write(backend, ns, hx(A), A[: len(A) // 2])
    assert list(backend.iter_chunks(ns)) == []
    assert not backend.has_chunk(ns, hx(A))
    with pytest.raises(ChunkNotFound):
        backend.get_chunk(ns, hx(A))
    backend.put_chunk(ns, hx(A), A)  # the retry succeeds next to the leftover
    assert [(s.digest_hex, s.size) for s in backend.iter_chunks(ns)] == [(hx(A), len(A))]
    assert backend.get_chunk(ns, hx(A)) == A


def test_a_failed_write_keeps_the_old_content(backend, ns, monkeypatch, tmp_path):
    backend.put_chunk(ns, hx(A), A)
    backend.put_object(ns, "indexes/x.idx", b"old")
    before = stored_names(backend, tmp_path)
    if isinstance(backend, LocalBackend):

        def broken_replace(src, dst):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", broken_replace)
    else:

        def broken_put(**kwargs):
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "PutObject")

        monkeypatch.setattr(backend.client, "put_object", broken_put)
    with pytest.raises(BackendError):
        backend.put_chunk(ns, hx(A), b"new content")
    with pytest.raises(BackendError):
        backend.put_object(ns, "indexes/x.idx", b"new")
    monkeypatch.undo()
    assert backend.get_chunk(ns, hx(A)) == A
    assert backend.get_object(ns, "indexes/x.idx") == b"old"
    assert stored_names(backend, tmp_path) == before  # no temp file left behind


def test_concurrent_writers_of_the_same_chunk(backend, ns):
    errors = []

    def put():
        try:
            for _ in range(5):
                backend.put_chunk(ns, hx(B), B)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert backend.get_chunk(ns, hx(B)) == B
    assert [s.digest_hex for s in backend.iter_chunks(ns)] == [hx(B)]


# -- local specifics: layout and fsync ----------------------------------------------------


def test_local_layout(tmp_path, ns):
    backend = LocalBackend(tmp_path / "store", fsync=False)
    digest = hx(A)
    backend.put_chunk(ns, digest, A)
    backend.put_object(ns, "indexes/x.idx", b"x")
    root = tmp_path / "store" / ns
    assert (root / "chunks" / digest[:2] / digest[2:4] / digest).read_bytes() == A
    assert (root / "objects" / "indexes" / "x.idx").read_bytes() == b"x"
    backend.quarantine_chunk(ns, digest, "bad")
    [moved] = [p for p in (root / "quarantine").iterdir() if not p.name.endswith(".reason")]
    assert moved.name.startswith(digest + ".") and moved.read_bytes() == A
    assert (root / "quarantine" / f"{moved.name}.reason").read_text() == "bad"


@pytest.mark.parametrize("fsync", [True, False])
def test_local_fsync_switch(tmp_path, ns, monkeypatch, fsync):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))
    backend = LocalBackend(tmp_path / "store", fsync=fsync)
    backend.put_chunk(ns, hx(A), A)  # creates directories: their parents are synced too
    first = len(calls)
    backend.put_chunk(ns, hx(A), A)  # existing directory: file + directory
    if fsync:
        assert first > 2
        assert len(calls) - first == 2
    else:
        assert calls == []
    assert backend.get_chunk(ns, hx(A)) == A
