"""Store throughput: ingest, 1 % incremental and restore, in-process and through the HTTP API.

Usage: .venv/bin/python bench/store.py [--size 1G] [--chunk-size 1M] [--threads 2] [--repeat 2]
       [--skip-http] [--fsync] [--encrypt] [--tmp DIR] [--study | --study-only] [--study-size 256M]

Generates a disk image (40 % zeros, 30 % text-like, 30 % random, in seeded runs of 64 KiB-8 MiB
like a filesystem) and a copy with 1 % overwritten in 256 KiB runs, then prints one row per
phase (MB/s = image bytes, 10^6, per second). Nothing is asserted: the machine is shared.

- one-core limit: a tight single-thread SHA-256 + zstd-1 loop over the same chunks (read
  beforehand). "x limit" is a phase's ratio to it (the issue's targets: >= 0.7 on one thread,
  >= 1.3 with the worker threads); "x nz" is the ratio to the same loop over the non-zero chunks
  only, i.e. to the work ingest really does (zero chunks are recognised by a memcmp).
- in-process: the store library (storage.store) as agent and server together: read (pread),
  skip zero chunks, hash, skip digests already stored, encode_blob + LocalBackend.put_chunk,
  build the index and write it (full, or the planned delta). Threads take 16 MiB batches.
  Restore: materialize the index chain, decode (CRC, digest) every chunk, write a sparse file.
- HTTP: ``manage.py serve --no-demo`` in its own data folder (SQLite), and in this process an
  agent: per ~32 MiB of image, hash, ask which digests are missing (<= 10,000 a query), upload
  those zstd-1 compressed in one batch; then commit the full index, or the delta against the
  base. Restore: the image endpoint as one stream, and as N parallel Range requests.
  "wire MiB" is every request body; in-process it is the chunk records an agent would send.
- Restores are checked bit-exact (SHA-256 of the written file against the image).
- --study: per chunk size (256 KiB-4 MiB), ingest speed, bytes sent for daily 1 % changes and
  the index cost of a 1 TiB disk; the figures behind STORE_CHUNK_SIZE.

Data lives in /dev/shm when it has room: on this VM's disk the page-cache writeback (~350 MB/s
sustained, using CPU) would be measured instead of the store; --tmp DIR measures a disk.
fsync is off unless --fsync (the server's default is on: that measures the disk too).
"""

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import math
import os
import random
import shutil
import struct
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zstandard  # noqa: E402

from storage.store import (  # noqa: E402
    ZERO_DIGEST,
    Index,
    IndexFile,
    LocalBackend,
    chunk_digest,
    decode_blob,
    decode_index_file,
    encode_blob,
    encode_index_file,
    is_zero,
    materialize,
    new_data_key,
    new_namespace,
    plan_index_file,
)
from storage.store.index import KIND_DELTA, entry_count  # noqa: E402

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
BLOCK = 4 * KiB  # filesystem block: runs and changes are aligned to it
BATCH_BYTES = 16 * MiB  # in-process work item per thread
UPLOAD_BYTES = 32 * MiB  # HTTP: plain bytes per upload batch (server limit: 64 MiB body)
MAX_DIGESTS = 10_000  # HTTP: digests per missing-query
CHANGE_RUN = 256 * KiB
CHANGE_FRACTION = 0.01
CHUNK_RECORD = struct.Struct(">32sII")
SESSIONS = "/api/v1/agent/upload-sessions/"


def parse_size(text: str) -> int:
    """'256M', '1G', '1GiB', '512k', '1048576' -> bytes (binary units)."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    factor = {"K": KiB, "M": MiB, "G": GiB, "T": TiB}.get(value[-1:], 1)
    return int(float(value[:-1] if factor > 1 else value) * factor)


def mib(n: float) -> str:
    return f"{n / MiB:,.1f}"


# -- the disk image ---------------------------------------------------------------------------


def _text_pool(rng: random.Random, size: int) -> bytes:
    """Text-like bytes: prose from a Zipf-weighted vocabulary and log lines with numbers."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    vocab = ["".join(rng.choices(letters, k=rng.randint(2, 11))) for _ in range(5000)]
    cum = [0.0]
    for rank in range(len(vocab)):
        cum.append(cum[-1] + 1 / (rank + 1))
    cum = cum[1:]
    lines, total = [], 0
    while total < size:
        words = " ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(4, 14)))
        if rng.random() < 0.3:
            line = (
                f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} "
                f"INFO {words} id={rng.randint(0, 10**9)} t={rng.random():.4f}\n"
            )
        else:
            line = words.capitalize() + ".\n"
        lines.append(line)
        total += len(line)
    pool = "".join(lines).encode()[:size]
    return pool + pool  # doubled: any slice of up to len(pool) bytes from any offset < len(pool)


def generate_image(path: Path, size: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    pool = _text_pool(rng, 8 * MiB)
    text = rand = size * 3 // 10 // BLOCK * BLOCK
    runs = []
    for kind, budget in (("zero", size - text - rand), ("text", text), ("random", rand)):
        while budget > 0:
            length = int(math.exp(rng.uniform(math.log(64 * KiB), math.log(8 * MiB))))
            runs.append((kind, min(budget, max(BLOCK, length // BLOCK * BLOCK))))
            budget -= runs[-1][1]
    rng.shuffle(runs)
    zeros = bytes(MiB)
    with open(path, "wb") as f:
        for kind, length in runs:
            for done in range(0, length, MiB):
                n = min(MiB, length - done)
                if kind == "zero":
                    f.write(zeros[:n])
                elif kind == "text":
                    start = rng.randrange(len(pool) // 2)
                    f.write(pool[start : start + n])
                else:
                    f.write(rng.randbytes(n))
    return {"runs": len(runs), "zero": size - text - rand, "text": text, "random": rand}


def apply_change(
    src: Path, dst: Path, size: int, seed: int, fraction: float = CHANGE_FRACTION
) -> list[tuple[int, int]]:
    """Copy ``src`` and overwrite ``fraction`` (1 %) of it in 256 KiB runs of new random data.
    Returns the (offset, length) runs written, as changed block tracking would report them."""
    rng = random.Random(seed)
    shutil.copyfile(src, dst)
    runs, written = max(1, round(size * fraction / CHANGE_RUN)), []
    with open(dst, "r+b") as f:
        for _ in range(runs):
            pos = rng.randrange(max(1, (size - CHANGE_RUN) // BLOCK + 1)) * BLOCK
            f.seek(pos)
            written.append((pos, f.write(rng.randbytes(min(CHANGE_RUN, size - pos)))))
    return written


class Image:
    """An image file read chunk by chunk with ``os.pread``, as an agent reads a disk.

    (Not an mmap: on this VM two threads hashing and compressing slices of one mmap do not
    scale past one core, while pread copies do.)"""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size
        self.sha256 = file_sha256(path)  # also warms the page cache

    def piece(self, i: int, chunk_size: int) -> bytes:
        return os.pread(self.fd, chunk_size, i * chunk_size)

    def close(self) -> None:
        os.close(self.fd)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def groups_of(entries: int, per: int) -> list[range]:
    return [range(s, min(entries, s + per)) for s in range(0, entries, per)]


_local = threading.local()


def compressor() -> zstandard.ZstdCompressor:
    if not hasattr(_local, "cctx"):
        _local.cctx = zstandard.ZstdCompressor(level=1)
    return _local.cctx


def one_core_limit(image: Image, chunk_size: int, nonzero: bool = False, threads: int = 1) -> float:
    """Seconds for SHA-256 + zstd-1 of every chunk on one thread: the one-core limit. The
    chunks are read before the clock starts (ingest pays for its reads, the limit does not).
    ``nonzero``: the same loop over the non-zero chunks only — ingest skips zero chunks after
    a memcmp, so this is the limit for the work ingest really does (our own overhead)."""
    pieces = [image.piece(i, chunk_size) for i in range(entry_count(chunk_size, image.size))]
    if nonzero:
        pieces = [p for p in pieces if not is_zero(p)]

    def loop(batch):
        cctx = compressor()
        for piece in batch:
            hashlib.sha256(piece).digest()
            cctx.compress(piece)

    started = time.perf_counter()
    if threads == 1:
        loop(pieces)
    else:  # what the machine gives right now to N threads (other processes may be running)
        per = max(1, BATCH_BYTES // chunk_size)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(loop, [pieces[s : s + per] for s in range(0, len(pieces), per)]))
    return time.perf_counter() - started


# -- in-process: the store library ------------------------------------------------------------


@dataclass
class Store:
    backend: LocalBackend
    key: bytes | None
    ns: str = field(default_factory=new_namespace)
    known: set = field(default_factory=set)  # digests stored (what the catalog would answer)


@dataclass
class Result:
    seconds: float
    chunks: int = 0  # chunks stored / sent
    stored: int = 0  # blob bytes stored
    wire: int = 0  # chunk records sent (header + frame), or all request bodies over HTTP
    index_bytes: int = 0
    index: Index | None = None
    names: list = field(default_factory=list)
    new: list = field(default_factory=list)  # digests (hex) stored by this run


def repeated(repeat: int, run, undo) -> Result:
    """``run()`` ``repeat`` times, undoing each but the last; the last result, with the best
    time (the machine is shared: the least disturbed run is the closest to the truth)."""
    results = []
    for attempt in range(repeat):
        results.append(run())
        if attempt < repeat - 1:
            undo(results[-1])
    results[-1].seconds = min(r.seconds for r in results)
    return results[-1]


def _ingest_group(store: Store, image: Image, cs: int, positions, base: bytes | None):
    digests, new, stored = [], [], 0
    for i in positions:
        piece = image.piece(i, cs)
        if is_zero(piece):
            digests.append(ZERO_DIGEST)
            continue
        digest = chunk_digest(piece)
        digests.append(digest)
        if base is not None and base[i * 32 : i * 32 + 32] == digest:
            continue  # unchanged since the base snapshot
        if digest in store.known:
            continue
        store.known.add(digest)
        digest_hex = digest.hex()
        if store.backend.has_chunk(store.ns, digest_hex):
            continue
        blob = encode_blob(piece, digest, key=store.key)
        store.backend.put_chunk(store.ns, digest_hex, blob)
        new.append(digest_hex)
        stored += len(blob)
    return b"".join(digests), new, stored


def ingest(store: Store, image: Image, cs: int, threads: int, base: Result | None = None):
    """Hash every chunk, store the new ones, write the index (a delta of ``base``'s when
    planned so): what an agent without change tracking plus the server do, in one process."""
    entries = entry_count(cs, image.size)
    base_digests = base.index.digests if base else None
    started = time.perf_counter()
    if threads == 1:
        parts = [_ingest_group(store, image, cs, range(entries), base_digests)]
    else:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(
                pool.map(
                    lambda g: _ingest_group(store, image, cs, g, base_digests),
                    groups_of(entries, max(1, BATCH_BYTES // cs)),
                )
            )
    index = Index(cs, image.size, b"".join(p[0] for p in parts))
    if base is None:
        planned = IndexFile.full(index)
    else:
        planned, _depth = plan_index_file(index, base.index, 0)
    data = encode_index_file(planned)
    name = f"indexes/{index.checksum()}.idx"
    store.backend.put_object(store.ns, name, data)
    seconds = time.perf_counter() - started
    new = [h for p in parts for h in p[1]]
    stored = sum(p[2] for p in parts)
    names = (base.names if base and planned.kind == KIND_DELTA else []) + [name]
    # On the wire a chunk is a 40-byte record header plus its zstd frame (~ the blob payload).
    wire = stored + len(new) * (CHUNK_RECORD.size - 12)
    return Result(seconds, len(new), stored, wire, len(data), index, names, new)


def forget(store: Store, result: Result) -> None:
    """Undo an ingest: delete the chunks and the index file it wrote."""
    for digest_hex in result.new:
        store.backend.delete_chunk(store.ns, digest_hex)
        store.known.discard(bytes.fromhex(digest_hex))
    store.backend.delete_object(store.ns, result.names[-1])


class Output:
    """The restore target: allocated once, then overwritten in place by every restore.

    (Truncating and rewriting it would measure this VM's cost of fresh memory pages, up to
    2.6 ms per MiB, not the restore.) ``scribble`` marks every 64 KiB block before a restore,
    so a block the restore does not write fails the SHA-256 check."""

    def __init__(self, path: Path, size: int):
        self.path, self.size = path, size
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.posix_fallocate(self.fd, 0, size)

    def scribble(self) -> int:
        for offset in range(0, self.size, 64 * KiB):
            os.pwrite(self.fd, b"\xa5" * 16, offset)
        return self.fd

    def check(self, image: Image) -> str:
        if file_sha256(self.path) == image.sha256:
            return "ok"
        print(f"!! restored image differs from {image.path.name}", file=sys.stderr)
        return "FAIL"

    def close(self) -> None:
        os.close(self.fd)


def restore(store: Store, snap: Result, fd: int, threads: int) -> float:
    """Materialize the index chain, decode (CRC, digest) every chunk and write the image to
    ``fd`` (zero chunks too, as onto a disk). Returns seconds."""
    started = time.perf_counter()
    chain = [decode_index_file(store.backend.get_object(store.ns, n)) for n in snap.names]
    index = materialize(chain, expected_checksum=snap.index.checksum())
    cs = index.chunk_size
    zeros = memoryview(bytes(cs))

    def work(positions):
        for i in positions:
            digest = index[i]
            if digest == ZERO_DIGEST:
                data = zeros[: index.entry_range(i)[1]]
            else:
                raw = store.backend.get_chunk(store.ns, digest.hex())
                data = decode_blob(raw, digest, key=store.key, max_size=cs)
            if os.pwrite(fd, data, i * cs) != len(data):
                raise OSError("short write")

    if threads == 1:
        work(range(len(index)))
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, groups_of(len(index), max(1, BATCH_BYTES // cs))))
    return time.perf_counter() - started


# -- through the HTTP API -----------------------------------------------------------------------

SETUP = """
import json
from clouds.services import agent_enroll, enrollment_token_create
from protection.services.jobs import job_start_for_agent
from protection.models import Disk, Machine
from tenants.services import customer_create
customer = customer_create("bench", "Bench").customer
enrolled = agent_enroll(
    enrollment_token_create(customer, platform="linux").text, hostname="bench", version="bench"
)
machine = Machine.objects.create(
    customer=customer, name="bench-vm", platform="linux", status="protected", agent=enrolled.agent
)
disk = Disk.objects.create(customer=customer, machine=machine, key="disk-0", size_bytes={size})
job = job_start_for_agent(customer, enrolled.agent, machine)
ids = {{"machine": machine.pk, "disk": disk.key, "token": enrolled.text, "job": job.pk}}
print(json.dumps(ids))
"""


@contextlib.contextmanager
def running_server(tmp: Path, cs: int, fsync: bool, encrypt: bool, size: int):
    """``manage.py serve --no-demo`` in its own data folder; yields (port, ids, pid)."""
    from tests.e2e_support import Process, free_port, isolated_env, manage, wait_http_ok

    with isolated_env(tmp) as env:
        env.update(ACURA_CHUNK_SIZE=str(cs), ACURA_STORE_FSYNC="1" if fsync else "0")
        env["LOG_LEVEL"] = "WARNING"
        if encrypt:
            env["ACURA_MASTER_KEYS"] = base64.b64encode(os.urandom(32)).decode()
        port = free_port()
        argv = [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)]
        server = Process(argv, env)
        try:
            wait_http_ok(f"http://127.0.0.1:{port}/healthz", timeout=180)
            done = manage(["shell", "-v", "0", "-c", SETUP.format(size=size)], env)
            if done.returncode:
                raise RuntimeError(f"setup failed:\n{done.stderr[-3000:]}")
            yield port, json.loads(done.stdout.strip().splitlines()[-1]), server.proc.pid
        except BaseException:
            print(server.output[-3000:], file=sys.stderr)
            raise
        finally:
            server.stop()


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and its descendants."""
    tick, parents, cpu = os.sysconf("SC_CLK_TCK"), {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry))
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += parents.get(pid, [])
    return total


class Api:
    """A keep-alive HTTP client, one connection per thread; counts request body bytes."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self._local = threading.local()
        self._lock = threading.Lock()
        self.sent = 0
        self._conns: list[http.client.HTTPConnection] = []

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, 600)
            with self._lock:
                self._conns.append(conn)
        return conn

    def send(self, method, path, body=None, ctype="application/json", headers=None):
        """The response (body unread): one retry on a connection the server closed."""
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        head = {"Authorization": f"Bearer {self.token}", "Content-Type": ctype, **(headers or {})}
        if body is not None:
            with self._lock:
                self.sent += len(body)
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=body, headers=head)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def call(self, method, path, body=None, ctype="application/json") -> dict:
        response = self.send(method, path, body, ctype)
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:2000]!r}")
        return json.loads(data)

    def close(self) -> None:
        for conn in self._conns:
            conn.close()


def http_ingest(api: Api, ids: dict, image: Image, cs: int, threads: int, base: Result | None):
    """An agent's replication: hash all chunks, ask which are missing, upload those
    zstd-compressed in ~32 MiB batches, commit the full index or the delta."""
    started, sent = time.perf_counter(), api.sent
    body = {"machine": ids["machine"], "disk": ids["disk"], "job": ids["job"]}
    session = api.call("POST", SESSIONS, body)
    if session["chunk_size"] != cs:
        raise RuntimeError(f"server chunk size {session['chunk_size']}, expected {cs}")
    if base and session["base_index_checksum"] != base.index.checksum():
        raise RuntimeError("the server's base index differs from the agent's")
    url = f"{SESSIONS}{session['id']}/"
    base_digests = base.index.digests if base else None

    def upload(parts: list) -> tuple[int, int]:
        if not parts:
            return 0, 0
        answer = api.call("POST", url + "chunks/", b"".join(parts), "application/octet-stream")
        return answer["stored"], answer["stored_bytes"]

    def work(positions):
        digests, todo = [], {}
        for i in positions:
            piece = image.piece(i, cs)
            digest = ZERO_DIGEST if is_zero(piece) else chunk_digest(piece)
            digests.append(digest)
            changed = base_digests is None or base_digests[i * 32 : i * 32 + 32] != digest
            if digest != ZERO_DIGEST and changed:
                todo.setdefault(digest, i)
        wanted = [d.hex() for d in todo]
        missing = []
        for s in range(0, len(wanted), MAX_DIGESTS):
            query = {"digests": wanted[s : s + MAX_DIGESTS]}
            missing += api.call("POST", url + "missing/", query)["missing"]
        parts, size, chunks, stored = [], 0, 0, 0
        for digest_hex in missing:
            digest = bytes.fromhex(digest_hex)
            piece = image.piece(todo[digest], cs)
            frame = compressor().compress(piece)
            parts += [CHUNK_RECORD.pack(digest, len(piece), len(frame)), frame]
            size += len(piece)
            if size >= UPLOAD_BYTES:
                done = upload(parts)
                chunks, stored, parts, size = chunks + done[0], stored + done[1], [], 0
        done = upload(parts)
        return b"".join(digests), chunks + done[0], stored + done[1]

    groups = groups_of(entry_count(cs, image.size), max(1, UPLOAD_BYTES // cs))
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(work, groups))
    index = Index(cs, image.size, b"".join(p[0] for p in parts))
    if base is None:
        commit = {"disk_size": image.size, "index": base64.b64encode(index.digests).decode()}
    else:
        raw = b"".join(struct.pack(">Q32s", p, d) for p, d in index.changes_from(base.index))
        commit = {
            "disk_size": image.size,
            "base_checksum": base.index.checksum(),
            "changes": base64.b64encode(raw).decode(),
        }
    snapshot = api.call("POST", url + "commit/", commit)
    if snapshot["index_checksum"] != index.checksum():
        raise RuntimeError("the committed index checksum differs from the agent's")
    seconds = time.perf_counter() - started
    chunks, stored = sum(p[1] for p in parts), sum(p[2] for p in parts)
    result = Result(seconds, chunks, stored, api.sent - sent, 0, index, [snapshot["id"]])
    return result


def http_restore(api: Api, snapshot_id: str, size: int, fd: int, threads: int) -> float:
    """GET the raw image (one stream, or ``threads`` parallel Range requests), write it."""
    started = time.perf_counter()
    path = f"/api/v1/agent/snapshots/{snapshot_id}/image/"

    def fetch(span: range) -> None:
        whole = span.start == 0 and span.stop == size
        headers = {} if whole else {"Range": f"bytes={span.start}-{span.stop - 1}"}
        response = api.send("GET", path, headers=headers)
        if response.status not in (200, 206):
            raise RuntimeError(f"GET {path}: {response.status} {response.read()[:500]!r}")
        buf, offset = bytearray(MiB), span.start
        view = memoryview(buf)
        while n := response.readinto(buf):
            os.pwrite(fd, view[:n], offset)
            offset += n
        if offset != span.stop:
            raise RuntimeError(f"image ended at {offset}, expected {span.stop}")

    if threads == 1:
        fetch(range(size))
    else:
        step = max(MiB, -(-size // (threads * 4)) // MiB * MiB)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fetch, [range(s, min(size, s + step)) for s in range(0, size, step)]))
    return time.perf_counter() - started


# -- report -----------------------------------------------------------------------------------


class Table:
    HEAD = (
        f"{'phase':42} {'thr':>3} {'s':>6} {'MB/s':>7} {'x limit':>7} {'x nz':>5} "
        f"{'chunks':>7} {'stored MiB':>10} {'wire MiB':>9} {'check':>5}"
    )

    def __init__(self, size: int, limit_s: float, nz_limit_s: float):
        self.size, self.limit_s, self.nz_limit_s = size, limit_s, nz_limit_s
        print(self.HEAD)
        print("-" * len(self.HEAD))

    def row(self, phase, threads, seconds, result=None, check="", ratio=False):
        rate = self.size / seconds / 1e6
        x = f"{self.limit_s / seconds:7.2f}" if ratio else " " * 7
        nz = f"{self.nz_limit_s / seconds:5.2f}" if ratio else " " * 5
        chunks = f"{result.chunks:7d}" if result else " " * 7
        stored = f"{mib(result.stored):>10}" if result else " " * 10
        wire = f"{mib(result.wire):>9}" if result and result.wire else " " * 9
        line = f"{phase:42} {threads:3d} {seconds:6.2f} {rate:7.0f} {x} {nz} {chunks} {stored}"
        print(f"{line} {wire} {check:>5}", flush=True)


def in_process(args, tmp: Path, cs: int, table: Table, images: tuple[Image, Image], out: Output):
    """Full ingest, incremental and restores through the store library; best of --repeat."""
    base_img, changed_img = images
    threads, key = args.threads, new_data_key() if args.encrypt else None
    backend = LocalBackend(tmp / "store", fsync=args.fsync)
    snaps = {}
    for n in sorted({1, threads}):
        store = Store(backend, key)

        def wipe(_result, store=store):
            shutil.rmtree(backend.root / store.ns)
            store.known.clear()

        full = repeated(args.repeat, partial(ingest, store, base_img, cs, n), wipe)
        table.row("in-process full ingest", n, full.seconds, full, ratio=True)
        snaps[n] = (store, full)
    for n in sorted({1, threads}):
        store, full = snaps[n]
        run = partial(ingest, store, changed_img, cs, n, base=full)
        incr = repeated(args.repeat, run, partial(forget, store))
        table.row("in-process 1 % incremental (hash all)", n, incr.seconds, incr, ratio=True)
        snaps[n] = (store, full, incr)
    store, full, incr = snaps[1]
    for n in sorted({1, threads}):
        for label, snap, image in (("base", full, base_img), ("changed", incr, changed_img)):
            seconds = min(restore(store, snap, out.scribble(), n) for _ in range(args.repeat))
            table.row(f"in-process restore {label}", n, seconds, check=out.check(image))
    return full, incr


def over_http(args, tmp: Path, cs: int, table: Table, images: tuple[Image, Image], out: Output):
    """The same against ``manage.py serve``: one run each (the server keeps its state).
    Also returns the CPU seconds of each phase: the server's (web, worker, beat) and the
    agent's (this process), since both share this machine's cores."""
    base_img, changed_img = images
    threads, cpu = args.threads, []
    with running_server(tmp / "server", cs, args.fsync, args.encrypt, base_img.size) as (
        port,
        ids,
        pid,
    ):
        api = Api(port, ids["token"])

        def measured(label, fn, *fn_args):
            server, agent = tree_cpu(pid), time.process_time()
            result = fn(*fn_args)
            cpu.append((label, tree_cpu(pid) - server, time.process_time() - agent))
            return result

        full = measured("full ingest", http_ingest, api, ids, base_img, cs, threads, None)
        table.row("HTTP full ingest", threads, full.seconds, full, ratio=True)
        incr = measured("incremental", http_ingest, api, ids, changed_img, cs, threads, full)
        table.row("HTTP 1 % incremental (hash all)", threads, incr.seconds, incr, ratio=True)
        for n in sorted({1, threads}):
            for label, snap, image in (("base", full, base_img), ("changed", incr, changed_img)):
                how = "1 stream" if n == 1 else f"{n} x Range"
                seconds = measured(
                    f"restore {label} ({how})",
                    http_restore,
                    api,
                    snap.names[0],
                    base_img.size,
                    out.scribble(),
                    n,
                )
                table.row(f"HTTP restore {label} ({how})", n, seconds, check=out.check(image))
        api.close()
    return full, incr, cpu


def run_main(args, tmp: Path, cs: int) -> None:
    size, threads = args.size, args.threads
    started = time.perf_counter()
    base_path, changed_path = tmp / "disk-0.img", tmp / "disk-1.img"
    info = generate_image(base_path, size, args.seed)
    change_runs = len(apply_change(base_path, changed_path, size, args.seed + 1))
    images = Image(base_path), Image(changed_path)
    print(
        f"image {mib(size)} MiB in {info['runs']} runs: zeros {mib(info['zero'])}, text "
        f"{mib(info['text'])}, random {mib(info['random'])} MiB; change: {change_runs} x 256 KiB "
        f"(generated in {time.perf_counter() - started:.1f}s)\n"
        f"chunk size {cs // KiB} KiB, worker threads {threads}, fsync "
        f"{'on' if args.fsync else 'off'}, encryption {'on' if args.encrypt else 'off'}, "
        f"{os.cpu_count()} CPUs, data in {tmp.parent}, best of {args.repeat} in-process runs\n"
    )
    limit_s = min(one_core_limit(images[0], cs) for _ in range(args.repeat))
    nz_limit_s = min(one_core_limit(images[0], cs, nonzero=True) for _ in range(args.repeat))
    table = Table(size, limit_s, nz_limit_s)
    table.row("one-core limit: SHA-256 + zstd-1, all chunks", 1, limit_s)
    table.row("  same loop, non-zero chunks only", 1, nz_limit_s)
    if threads > 1:
        runs = (one_core_limit(images[0], cs, threads=threads) for _ in range(args.repeat))
        table.row("  same loop, all chunks, N threads", threads, min(runs), ratio=True)
    out = Output(tmp / "restored.img", size)
    full, incr = in_process(args, tmp, cs, table, images, out)
    http = None if args.skip_http else over_http(args, tmp, cs, table, images, out)
    out.close()
    zero = _zero_entries(full.index)
    print(
        f"\nnon-zero chunks {len(full.index) - zero} of {len(full.index)}; stored: full "
        f"{mib(full.stored)} MiB ({full.chunks} chunks), incremental +{mib(incr.stored)} MiB "
        f"({incr.chunks} chunks)\n"
        f"index files: full {full.index_bytes:,} B ({len(full.index):,} entries), "
        f"delta {incr.index_bytes:,} B ({len(incr.index.changes_from(full.index)):,} changes)"
    )
    if http:
        print(
            f"HTTP request bodies: full {mib(http[0].wire)} MiB, incremental "
            f"{mib(http[1].wire)} MiB; server stored {mib(http[0].stored)} + "
            f"{mib(http[1].stored)} MiB\n"
            f"HTTP CPU seconds, server (web + worker + beat) / agent (this process), and image "
            f"MB/s per server core:"
        )
        for label, server, agent in http[2]:
            per_core = size / server / 1e6 if server else 0
            print(f"  {label:28} {server:6.2f} / {agent:5.2f} s   {per_core:6.0f} MB/s a core")
    for image in images:
        image.close()


def _zero_entries(index: Index) -> int:
    return sum(1 for d in index if d == ZERO_DIGEST)


# -- chunk-size study ---------------------------------------------------------------------------

STUDY_SIZES = (256 * KiB, 512 * KiB, MiB, 2 * MiB, 4 * MiB)
DELTA_CHAIN = 16  # storage.store.index.DELTA_MAX_DEPTH: a full index every 17 snapshots
STUDY_DAYS = 4


def _delta_file_size(cs: int, disk: int, changes: int, rng: random.Random) -> int:
    """Encoded size of a delta index with ``changes`` random entries of a ``disk``-byte disk."""
    entries = entry_count(cs, disk)
    positions = sorted(rng.sample(range(entries), changes))
    body = struct.pack(">Q", changes) + b"".join(
        struct.pack(">Q32s", p, rng.randbytes(32)) for p in positions
    )
    delta = IndexFile(KIND_DELTA, cs, disk, entries, rng.randbytes(32), body)
    return len(encode_index_file(delta))


def _study_http(args, tmp: Path, cs: int, images: list[Image]) -> tuple[float, list[int]]:
    """HTTP full ingest MB/s and the request bytes of each following day's replication."""
    with running_server(tmp / f"server-{cs}", cs, args.fsync, False, images[0].size) as (
        port,
        ids,
        _pid,
    ):
        api = Api(port, ids["token"])
        snap = http_ingest(api, ids, images[0], cs, args.threads, None)
        rate, wire = images[0].size / snap.seconds / 1e6, []
        for image in images[1:]:
            snap = http_ingest(api, ids, image, cs, args.threads, snap)
            wire.append(snap.wire)
        api.close()
    shutil.rmtree(tmp / f"server-{cs}")
    return rate, wire


def run_study(args, tmp: Path) -> None:
    """Per chunk size: ingest speed, and what STUDY_DAYS daily 1 % changes (256 KiB runs, each
    day on top of the previous) cost on the wire and in index bytes, scaled to a 1 TiB disk."""
    size = args.study_size
    paths = [tmp / f"study-{day}.img" for day in range(STUDY_DAYS + 1)]
    generate_image(paths[0], size, args.seed)
    for day in range(1, STUDY_DAYS + 1):
        apply_change(paths[day - 1], paths[day], size, args.seed + day)
    images = [Image(path) for path in paths]
    rng = random.Random(args.seed)
    http = "skipped" if args.skip_http else f"{args.threads} threads"
    print(
        f"\nchunk-size study: {mib(size)} MiB image, then {STUDY_DAYS} days of 1 % change in "
        f"256 KiB runs (each day on the previous one)\n"
        f"  limit, ingest: one thread; HTTP: full ingest, {http}; per day: index entries "
        f"changed, bytes sent (HTTP bodies, or estimated)\n"
        f"  1 TiB disk: chunks (objects, catalog rows) per TiB of data; full index (32 B an "
        f"entry); one day's delta (encoded);\n"
        f"  average index bytes per daily snapshot (a full index every {DELTA_CHAIN + 1}); "
        f"bytes sent a day"
    )
    head = (
        f"{'chunk':>6} {'limit':>6} {'ingest':>6} {'x lim':>5} {'HTTP':>5} {'chg/day':>7} "
        f"{'sent/day':>9} | {'chunks':>9} {'full idx':>9} {'delta':>9} {'avg idx':>9} "
        f"{'sent/day':>9}"
    )
    units = (
        f"{'':>6} {'MB/s':>6} {'MB/s':>6} {'':>5} {'MB/s':>5} {'':>7} {'KiB':>9} | "
        f"{'per TiB':>9} {'MiB':>9} {'KiB':>9} {'KiB':>9} {'GiB':>9}"
    )
    print(head)
    print(units)
    print("-" * len(head))
    for cs in STUDY_SIZES:
        limit_s = min(one_core_limit(images[0], cs) for _ in range(args.repeat))
        store = Store(LocalBackend(tmp / f"study-{cs}", fsync=args.fsync), None)

        def wipe(_result, store=store):
            shutil.rmtree(store.backend.root / store.ns)
            store.known.clear()

        snap = repeated(args.repeat, partial(ingest, store, images[0], cs, 1), wipe)
        seconds, changes, wire = snap.seconds, [], []
        for image in images[1:]:
            new = ingest(store, image, cs, 1, base=snap)
            changes.append(len(new.index.changes_from(snap.index)))
            # chunk records + missing-query (~68 B a digest) + delta commit (base64 of 40 B)
            wire.append(new.wire + changes[-1] * 68 + -(-changes[-1] * 40 // 3) * 4)
            snap = new
        shutil.rmtree(tmp / f"study-{cs}")
        rate = "     -"
        if not args.skip_http:
            http_rate, wire = _study_http(args, tmp, cs, images)
            rate = f"{http_rate:5.0f}"
        per_day, sent = sum(changes) / len(changes), sum(wire) / len(wire)
        entries = TiB // cs
        full_tib = entries * 32 + 101  # header 69 + trailer 32; digests do not compress
        delta_tib = _delta_file_size(cs, TiB, round(entries * per_day / len(snap.index)), rng)
        average = (full_tib + DELTA_CHAIN * delta_tib) / (DELTA_CHAIN + 1)
        print(
            f"{cs // KiB:>5}K {size / limit_s / 1e6:6.0f} {size / seconds / 1e6:6.0f} "
            f"{limit_s / seconds:5.2f} {rate:>5} {per_day:7.1f} {sent / KiB:9.0f} | "
            f"{entries:9,d} {full_tib / MiB:9.1f} {delta_tib / KiB:9.0f} "
            f"{average / KiB:9.0f} {sent * TiB / size / GiB:9.2f}",
            flush=True,
        )
    # A full-index commit is one JSON body of at most STORE_MAX_UPLOAD_BYTES: base64 of 32 B an
    # entry. That caps the disk a first (full) snapshot can describe.
    limit = django_settings().STORE_MAX_UPLOAD_BYTES
    entries = (limit - 1024) * 3 // 4 // 32
    caps = ", ".join(f"{cs // KiB}K: {entries * cs / GiB:,.0f} GiB" for cs in STUDY_SIZES)
    print(f"largest disk a full-index commit fits ({mib(limit)} MiB JSON body): {caps}")
    for image in images:
        image.close()


def work_dir(args) -> str | None:
    """tmpfs when it has room for images, stores, restores and the server's copy: on disk,
    this VM's page-cache writeback (~350 MB/s sustained) and its CPU use would be measured
    instead of the store. ``--tmp`` picks a disk folder to measure that on purpose."""
    if args.tmp:
        return args.tmp
    shm = Path("/dev/shm")
    need = 7 * max(args.size, args.study_size)
    if shm.is_dir() and shutil.disk_usage(shm).free > need:
        return str(shm)
    return None


def django_settings():
    """The portal's settings (read, not set up: the library part needs no Django)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acura_portal.settings")
    from django.conf import settings

    return settings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=GiB, help="image size (1G, 256M)")
    parser.add_argument("--chunk-size", type=parse_size, help="default: STORE_CHUNK_SIZE")
    parser.add_argument("--threads", type=int, default=2, help="worker threads (default 2)")
    parser.add_argument("--skip-http", action="store_true", help="no server run")
    parser.add_argument("--fsync", action="store_true", help="fsync every write (default off)")
    parser.add_argument("--encrypt", action="store_true", help="AES-256-GCM blobs")
    parser.add_argument("--study", action="store_true", help="also run the chunk-size study")
    parser.add_argument("--study-only", action="store_true", help="only the chunk-size study")
    parser.add_argument("--study-size", type=parse_size, default=256 * MiB)
    parser.add_argument("--repeat", type=int, default=2, help="in-process runs; best is shown")
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument(
        "--tmp", help="folder for images, stores and the server (default: /dev/shm if it has room)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acura-bench-store-", dir=work_dir(args)) as name:
        tmp = Path(name)
        os.environ.setdefault("ACURA_DATA_DIR", str(tmp / "settings-data"))
        cs = args.chunk_size or django_settings().STORE_CHUNK_SIZE
        if not args.study_only:
            run_main(args, tmp, cs)
        if args.study or args.study_only:
            run_study(args, tmp)


if __name__ == "__main__":
    main()
