"""Helpers for tests of the job and agent pages: a real enrolled agent, and a job that
commits a real snapshot through the storage services (so ``job_finish`` accepts it)."""

import hashlib

import zstandard

from protection.services.jobs import job_finish, job_progress, job_take_next
from storage.services.chunks import UploadEntry
from storage.services.sessions import CommitRequest, session_commit, session_open, session_upload
from storage.store.index import ZERO_DIGEST
from tests.factories import DiskFactory, enroll_agent


def make_agent(customer, *, hostname="host-1", status=None, platform="linux", group=None):
    """An agent enrolled with a real token; ``status`` overrides the enrolled *pending*."""
    agent = enroll_agent(customer, platform=platform, hostname=hostname, group=group).agent
    if status is not None:
        type(agent).objects.for_customer(customer).filter(pk=agent.pk).update(status=status)
        agent.refresh_from_db()
    return agent


def commit_snapshot(customer, job, disk=None, *, data: bytes | None = None, chunks=4):
    """A committed snapshot of ``job``'s machine made by ``job``, through the storage
    services an agent's upload ends in. Without ``data`` the disk is all zeros (nothing to
    upload); with it, its chunks are compressed, uploaded and committed."""
    machine = job.machine
    if disk is None:
        disk = machine.disks.first() or DiskFactory(
            machine=machine, customer=customer, key="disk-1", size_bytes=chunks * 64 * 1024
        )
    session, _resumed = session_open(customer, machine, disk, job=job)
    size = session.chunk_size
    if data is None:
        request = CommitRequest(disk_size=chunks * size, digests=ZERO_DIGEST * chunks)
        return session_commit(session, request)
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    compressor = zstandard.ZstdCompressor(level=1)
    digests, entries = [], []
    for piece in pieces:
        if not piece.strip(b"\0"):
            digests.append(ZERO_DIGEST)
            continue
        digest = hashlib.sha256(piece).digest()
        digests.append(digest)
        entries.append(UploadEntry(digest.hex(), len(piece), compressor.compress(piece)))
    session_upload(session, entries)
    return session_commit(session, CommitRequest(disk_size=len(data), digests=b"".join(digests)))


def run_job(customer, agent, *, succeed=True, error="Disk read failed."):
    """Take the agent's next queued job and finish it the way the agent API would."""
    job = job_take_next(customer, agent)
    assert job is not None, "no queued job for this agent"
    job_progress(job, phase="reading disk-1", bytes_total=1000, bytes_done=1000, bytes_read=1000)
    if succeed:
        snapshot = commit_snapshot(customer, job)
        return job_finish(job, succeeded=True, snapshot_ids=[snapshot.pk], bytes_sent=300)
    return job_finish(job, succeeded=False, error=error)
