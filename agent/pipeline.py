"""Replicate one disk into an open upload session: read, hash, ask, compress, upload, commit.

Two thread pools overlap the CPU and the network (hashlib, zstandard, pread and sockets all
release the GIL):

- *hash* workers (``threads``, default one per CPU) take runs of up to 8 MiB of chunk
  positions, pread each chunk, recognise all-zero chunks with a memcmp (never hashed, never
  sent), SHA-256 the others and write the digest into the new index. A chunk whose digest
  differs from the base index (every non-zero chunk when there is no base) is a candidate,
  compressed right there (zstd level 1) while most candidates turn out missing, so the CPU
  work stays in the pool sized to the CPUs. When most are already stored (a resumed job, a
  disk much like one the customer already has) compression waits for the missing-query.
- candidates go to a batcher; each ~16 MiB batch becomes a *send* task on a small pool of
  network threads: one missing-query (≤ ``max_digests_per_query`` digests), then uploads of
  the chunks the store lacks, at most ``max_upload_bytes`` per request, through the
  bandwidth throttle. Several send tasks run at once, so queries, uploads and hashing overlap.
  Batches go out as their pieces (record headers and frames), never copied into one buffer.
  The last batch (all that a small job has) is uploaded as a few requests at once: nothing
  is left to overlap it with, and the server ingests them on several workers. The job's
  "committing" progress goes out while those last uploads run, not one round trip later.

A byte budget bounds the data waiting to be sent: reading never runs further ahead of the
network than a few batches, so memory stays small and a throttled job reads at the pace it
sends. A digest is claimed once per disk, so a chunk repeated on the disk is sent once.
Resume after a crash costs a re-read: the missing-query leaves out every chunk the store
already has.

The commit sends ``base_checksum`` + the changed entries when the session has a base, else
the full index as a raw body. The index checksum the server answers must equal ours.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from .disk import SourceDisk, is_zero
from .errors import AgentError, Cancelled, ServerError
from .index import (
    DIGEST_SIZE,
    ZERO_DIGEST,
    DiskIndex,
    changes_from,
    encode_changes,
    entry_count,
)
from .progress import Progress
from .throttle import Throttle
from .workers import Tasks, first_error, frame_record, plain_size, record_size

log = logging.getLogger("agent.pipeline")

MiB = 1 << 20
GROUP_BYTES = 8 * MiB  # disk bytes per hash work item
BATCH_BYTES = 16 * MiB  # compressed candidate bytes per missing-query + upload batch
SPLIT_BYTES = 2 * MiB  # the last batch goes in pieces of at least this, several at once
MAX_SENDERS = 4  # concurrent missing-query + upload requests (they mostly wait on the server)


@dataclass
class DiskResult:
    key: str
    snapshot: dict
    index: DiskIndex
    delta: bool
    chunks: int
    changed_chunks: int
    chunks_sent: int
    new_chunks: int
    bytes_read: int
    bytes_sent: int
    resumed: bool


class DiskPipeline:
    def __init__(
        self,
        client,
        session: dict,
        disk: SourceDisk,
        *,
        base: DiskIndex | None = None,
        positions: list[int] | None = None,
        threads: int = 2,
        throttle: Throttle | None = None,
        progress: Progress | None = None,
        halt: threading.Event | None = None,
        before_commit=None,
        zero_elsewhere: bool = False,
    ):
        self.client, self.session, self.disk = client, session, disk
        # ``positions`` are the only allocated chunks (VMware's changed areas since "*"):
        # every other chunk is a zero chunk, whatever the base held.
        self.zero_elsewhere = zero_elsewhere and positions is not None
        self.before_commit = before_commit
        self.cs = int(session["chunk_size"])
        self.size = disk.size
        self.entries = entry_count(self.cs, self.size)
        self.url = f"upload-sessions/{session['id']}/"
        self.max_digests = int(session.get("max_digests_per_query") or 10_000)
        self.max_upload = int(session.get("max_upload_bytes") or 64 * MiB)
        self.threads = max(1, threads)
        self.senders = max(2, min(MAX_SENDERS, self.threads + 1))
        self.throttle = throttle or Throttle(None)
        self.progress = progress or Progress(self.size)
        self.halt = halt or threading.Event()
        self.abort = threading.Event()
        if base is not None and (base.chunk_size != self.cs or not session.get("base_snapshot")):
            base = None
        self.base = base
        self.digests = bytearray(self.entries * DIGEST_SIZE)
        if base is not None and not self.zero_elsewhere:
            common = min(len(base.digests), len(self.digests))
            self.digests[:common] = base.digests[:common]
        self.positions = self._positions(positions)
        batch = BATCH_BYTES
        if self.throttle.limited:  # a batch should take ~2 s on the wire, not minutes
            batch = int(min(batch, max(self.cs, self.throttle.rate * 2)))
        self.batch_bytes = batch
        self.budget = batch * (self.senders + 2) + 2 * self.cs
        self._cond = threading.Condition()
        self._claimed: set[bytes] = set()
        self._batch: list[tuple[bytes, bytes, bytes]] = []
        self._batch_size = 0
        self._held = 0
        # Compress candidates where they are hashed while most turn out missing (a first or
        # incremental replication); once most are already stored (a resumed job, a disk like
        # one the customer already has), compress only what the missing-query asks for.
        self.eager = not session.get("resumed")
        self._asked = self._missing = 0
        self.counts = {"chunks_sent": 0, "new_chunks": 0, "bytes_read": 0, "bytes_sent": 0}

    def _positions(self, positions: list[int] | None) -> list[int] | range:
        if self.zero_elsewhere:
            return sorted({p for p in positions if p < self.entries})
        if positions is None or self.base is None:
            if positions is not None:
                log.info("%s: no base snapshot, so every chunk is read", self.disk.key)
            return range(self.entries)
        wanted = {p for p in positions if p < self.entries}
        if self.base.disk_size != self.size:  # a resized disk: its tail is new
            wanted.update(range(min(self.base.disk_size, self.size) // self.cs, self.entries))
        return sorted(wanted)

    # -- counters ----------------------------------------------------------------------------

    def _count(self, **amounts: int) -> None:
        with self._cond:
            for name, amount in amounts.items():
                self.counts[name] += amount
        self.progress.add(**amounts)

    def _post(self, path: str, payload: dict) -> dict:
        body = json.dumps(payload, separators=(",", ":")).encode()
        answer = self.client.request(
            "POST", self.url + path, body=body, content_type="application/json"
        ).json()
        self._count(bytes_sent=len(body))
        return answer

    # -- stage 1: read and hash -------------------------------------------------------------

    def _work_items(self):
        """Runs of consecutive positions, at most GROUP_BYTES each."""
        per = max(1, GROUP_BYTES // self.cs)
        run: list[int] = []
        for pos in self.positions:
            if run and (pos != run[-1] + 1 or len(run) >= per):
                yield run
                run = []
            run.append(pos)
        if run:
            yield run

    def _hash(self, positions: list[int]) -> None:
        base = self.base.digests if self.base is not None else None
        cs, size, digests = self.cs, self.size, self.digests
        candidates = []
        read = 0
        for pos in positions:
            if self.halt.is_set() or self.abort.is_set():
                raise Cancelled("stopped")
            offset = pos * cs
            data = self.disk.read(offset, min(cs, size - offset))
            read += len(data)
            at = pos * DIGEST_SIZE
            if is_zero(data):
                digests[at : at + DIGEST_SIZE] = ZERO_DIGEST
                continue
            digest = hashlib.sha256(data).digest()
            digests[at : at + DIGEST_SIZE] = digest
            if (base is None or base[at : at + DIGEST_SIZE] != digest) and self._claim(digest):
                candidates.append(frame_record(digest, data) if self.eager else (digest, data))
        self._count(bytes_read=read)
        # Done = read and settled: zero, unchanged, or already stored. A chunk still to be
        # sent counts once its upload is answered, so a throttled job never shows 100 %
        # while its last batches are on the wire.
        self.progress.add(bytes_done=read - sum(plain_size(r) for r in candidates))
        for record in candidates:
            self._offer(record)

    def _claim(self, digest: bytes) -> bool:
        """True the first time ``digest`` is seen on this disk (it is sent at most once)."""
        with self._cond:
            if digest in self._claimed:
                return False
            self._claimed.add(digest)
            return True

    def _offer(self, record: tuple[bytes, bytes, bytes]) -> None:
        """Queue a compressed chunk for the next batch, waiting while the budget is full."""
        size = record_size(record)
        with self._cond:
            while self._held + size > self.budget:
                if self.abort.is_set() or self.halt.is_set():
                    raise Cancelled("stopped")
                self._cond.wait(0.5)
            self._held += size
            self._batch.append(record)
            self._batch_size += size
            if self._batch_size >= self.batch_bytes or len(self._batch) >= self.max_digests:
                self._flush_locked()

    def _flush_locked(self, last: bool = False) -> None:
        if self._batch:
            batch, self._batch, self._batch_size = self._batch, [], 0
            self._sends.submit(self._send, batch, last)

    # -- stage 2: ask, upload --------------------------------------------------------------

    def _send(self, batch: list[tuple[bytes, bytes, bytes]], last: bool = False) -> None:
        """Ask which of the batch's chunks the store lacks and upload those. The ``last``
        batch (all a small job has) goes in a few requests at once: nothing else is left to
        overlap with, and the server ingests them on several workers."""
        try:
            missing: set[str] = set()
            wanted = [record[0].hex() for record in batch]
            for start in range(0, len(wanted), self.max_digests):
                if self.halt.is_set() or self.abort.is_set():
                    raise Cancelled("stopped")
                query = {"digests": wanted[start : start + self.max_digests]}
                missing.update(self._post("missing/", query)["missing"])
            with self._cond:
                self._asked += len(wanted)
                self._missing += len(missing)
                self.eager = 2 * self._missing >= self._asked
            wanted_records = [record for record in batch if record[0].hex() in missing]
            present = sum(plain_size(r) for r in batch if r[0].hex() not in missing)
            if present:
                self.progress.add(bytes_done=present)
            pieces = 1
            if last and len(wanted_records) > 1:
                total = sum(record_size(record) for record in wanted_records)
                pieces = min(self.senders, len(wanted_records), -(-total // SPLIT_BYTES))
            uploads: list[tuple[list[bytes], int, int, int]] = []
            parts: list[bytes] = []
            records = body = plain = 0
            for i, record in enumerate(wanted_records):
                if self.halt.is_set() or self.abort.is_set():
                    raise Cancelled("stopped")
                _, header, frame = record if len(record) == 3 else frame_record(*record)
                size = len(header) + len(frame)
                new_piece = pieces > 1 and i * pieces // len(wanted_records) > len(uploads)
                if parts and (body + size > self.max_upload or new_piece):
                    uploads.append((parts, records, body, plain))
                    parts, records, body, plain = [], 0, 0, 0
                parts += (header, frame)
                records += 1
                body += size
                plain += plain_size(record)
            if parts:
                uploads.append((parts, records, body, plain))
            if last and len(uploads) > 1:
                with ThreadPoolExecutor(len(uploads) - 1, thread_name_prefix="up") as pool:
                    futures = [pool.submit(self._upload, *upload) for upload in uploads[1:]]
                    try:
                        self._upload(*uploads[0])
                    finally:
                        errors = [f.exception() for f in futures]
                    for error in errors:
                        if error is not None:
                            raise error
            else:
                for upload in uploads:
                    self._upload(*upload)
        finally:
            with self._cond:
                self._held -= sum(record_size(record) for record in batch)
                self._cond.notify_all()

    def _upload(self, parts: list[bytes], records: int, size: int, plain: int) -> None:
        if self.halt.is_set() or self.abort.is_set():
            raise Cancelled("stopped")
        for attempt in (1, 2):
            limited = self.throttle.limited
            stream = self.throttle.stream(parts) if limited else partial(iter, parts)
            try:
                answer = self.client.request(
                    "POST", self.url + "chunks/", body=stream, length=size
                ).json()
                break
            except ServerError as exc:
                # A record that failed verification got damaged on the way: send it again once.
                if exc.code != "chunks_failed" or attempt == 2:
                    raise
                log.warning("%s: %s; sending the batch again", self.disk.key, exc.server_message)
        self._count(bytes_sent=size, chunks_sent=records, new_chunks=int(answer.get("stored", 0)))
        self.progress.add(bytes_done=plain)

    # -- the whole disk ---------------------------------------------------------------------

    def run(self) -> DiskResult:
        started = time.monotonic()
        if not isinstance(self.positions, range):  # changed areas: the rest is done already
            to_read = sum(min(self.cs, self.size - p * self.cs) for p in self.positions)
            self.progress.add(bytes_done=self.size - to_read)
        self.progress.set_phase(f"reading {self.disk.key}")
        with (
            ThreadPoolExecutor(self.threads, thread_name_prefix="hash") as hash_pool,
            ThreadPoolExecutor(self.senders, thread_name_prefix="send") as send_pool,
        ):
            hashes = Tasks(hash_pool, self.abort, limit=self.threads * 2)
            self._sends = Tasks(send_pool, self.abort)
            for item in self._work_items():
                if self.abort.is_set() or self.halt.is_set():
                    break
                hashes.submit(self._hash, item)
            hashes.wait()
            if not self.abort.is_set() and not self.halt.is_set():
                with self._cond:
                    self._flush_locked(last=True)
                # Everything is read and on its way: say "committing" now, while the last
                # uploads run, not one round trip after them. A job cancelled meanwhile
                # stops here, before anything is committed.
                try:
                    self._committing()
                except BaseException:
                    self.abort.set()
                    raise
                finally:
                    self._sends.wait()
            self._sends.wait()
        error = first_error(hashes.error, self._sends.error)
        if error is not None:
            raise error
        if self.halt.is_set():
            raise Cancelled("stopped")
        snapshot, delta, changed = self._commit()
        log.info(
            "%s: snapshot %s in %.1f s (%d chunks sent, %d new)",
            self.disk.key,
            snapshot.get("id"),
            time.monotonic() - started,
            self.counts["chunks_sent"],
            self.counts["new_chunks"],
        )
        return DiskResult(
            key=self.disk.key,
            snapshot=snapshot,
            index=self.index,
            delta=delta,
            chunks=self.entries,
            changed_chunks=changed,
            resumed=bool(self.session.get("resumed")),
            **self.counts,
        )

    # -- commit -------------------------------------------------------------------------------

    def _committing(self) -> None:
        if self.before_commit is not None:
            self.before_commit()
        else:
            self.progress.set_phase("committing")

    def _commit(self) -> tuple[dict, bool, int]:
        self.index = DiskIndex(self.cs, self.size, bytes(self.digests))
        checksum = self.index.checksum()
        delta = self.base is not None and bool(self.session.get("base_index_checksum"))
        changes = changes_from(self.index.digests, self.base.digests) if delta else None
        changed = len(changes) if changes is not None else self.entries
        if delta and len(changes) * 40 * 4 // 3 > self.max_upload * 0.9:
            delta = False  # a delta that big is better sent as a raw full index
        resends = 0
        while True:
            try:
                snapshot = self._send_commit(delta, changes)
                break
            except ServerError as exc:
                if exc.code == "missing_chunks" and resends < 2:
                    resends += 1
                    self._resend(exc.details.get("missing") or [])
                elif exc.code == "base_mismatch" and delta:
                    log.warning("%s: %s; committing the full index", self.disk.key, exc)
                    delta = False
                elif exc.status == 409 and exc.code == "session_closed":
                    snapshot = self._committed_snapshot(exc)
                    break
                else:
                    raise
        if snapshot.get("index_checksum") != checksum:
            raise AgentError(
                f"the server committed snapshot {snapshot.get('id')} of {self.disk.key} with index "
                f"checksum {snapshot.get('index_checksum')}, but the agent computed {checksum}"
            )
        return snapshot, delta, changed

    def _send_commit(self, delta: bool, changes) -> dict:
        if delta:
            raw = encode_changes(changes)
            payload = {
                "disk_size": self.size,
                "base_checksum": self.session["base_index_checksum"],
                "changes": base64.b64encode(raw).decode(),
            }
            return self._post("commit/", payload)
        body = self.index.digests
        answer = self.client.request(
            "POST", self.url + "commit/", body=body, params={"disk_size": self.size}
        ).json()
        self._count(bytes_sent=len(body))
        return answer

    def _resend(self, missing_hex: list[str]) -> None:
        """The commit found chunks missing (e.g. collected since the missing-query): read
        them again by position and upload them."""
        wanted = {bytes.fromhex(h) for h in missing_hex}
        log.warning("%s: the server lacks %d chunk(s); sending them", self.disk.key, len(wanted))
        batch, seen = [], set()
        digests = self.index.digests
        for pos in range(self.entries):
            digest = digests[pos * DIGEST_SIZE : (pos + 1) * DIGEST_SIZE]
            if digest in wanted and digest not in seen:
                seen.add(digest)
                offset = pos * self.cs
                data = self.disk.read(offset, min(self.cs, self.size - offset))
                if hashlib.sha256(data).digest() != digest:
                    raise AgentError(
                        f"disk {self.disk.key} changed while it was replicated (chunk {pos}); "
                        "replicate a snapshot of it, not the live disk"
                    )
                batch.append(frame_record(digest, data))
        with self._cond:
            self._held += sum(record_size(record) for record in batch)
        self._send(batch)

    def _committed_snapshot(self, exc: ServerError) -> dict:
        """A commit retried after a lost answer finds the session closed: if it was our
        commit that closed it, its snapshot is the answer."""
        session = self.client.json("GET", self.url)
        if session.get("state") != "committed" or not session.get("snapshot"):
            raise exc
        return self.client.json("GET", f"snapshots/{session['snapshot']}/")
