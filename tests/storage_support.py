"""Helpers for tests that replicate through the upload API as an agent would."""

import base64
import hashlib
import struct

import zstandard
from rest_framework.test import APIClient

from protection.models import UNPROTECTED_STATUSES, JobState, Machine, MachineStatus, ReplicationJob
from protection.services.jobs import job_start_for_agent
from tests.factories import DiskFactory, MachineFactory, enroll_agent

CHUNK = 64 * 1024  # small chunks keep the tests fast; the protocol is the same


def make_disk(customer, key="disk-1", size=8 * CHUNK):
    machine = MachineFactory(customer=customer)
    return DiskFactory(machine=machine, customer=customer, key=key, size_bytes=size)


def split(data: bytes, chunk_size: int = CHUNK) -> list[bytes]:
    return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]


def digest_of(chunk: bytes) -> bytes:
    return bytes(32) if not chunk.strip(b"\0") else hashlib.sha256(chunk).digest()


def batch(chunks: list[bytes]) -> bytes:
    """The upload body: digest | plain size | frame size | zstd frame, per chunk."""
    compressor = zstandard.ZstdCompressor(level=1)
    parts = []
    for chunk in chunks:
        frame = compressor.compress(chunk)
        parts.append(struct.pack(">32sII", hashlib.sha256(chunk).digest(), len(chunk), len(frame)))
        parts.append(frame)
    return b"".join(parts)


def enroll(customer, *, platform="linux", hostname="test-host"):
    """An enrolled agent of ``customer`` (through the enrollment services) and its
    credential: ``(agent row, "acag_…")``."""
    enrolled = enroll_agent(customer, platform=platform, hostname=hostname)
    return enrolled.agent, enrolled.text


def running_job(agent, machine) -> ReplicationJob:
    """``agent``'s running job for ``machine``: the one there is, or a new one started as
    ``acura-agent replicate`` starts it (the machine made this agent's and protected)."""
    job = (
        ReplicationJob.objects.for_customer(agent.customer_id)
        .filter(machine=machine, agent=agent, state__in=(JobState.RUNNING, JobState.COMMITTING))
        .first()
    )
    if job is not None:
        return job
    fields = {"agent": agent}
    if machine.status in UNPROTECTED_STATUSES:
        fields["status"] = MachineStatus.PROTECTED
    Machine.objects.for_customer(agent.customer_id).filter(pk=machine.pk).update(**fields)
    machine.refresh_from_db()
    return job_start_for_agent(machine.customer, agent, machine)


class Agent:
    """Speaks the upload protocol through the test client, as an agent would.

    ``Agent.enrolled(customer)`` is a real enrolled agent; ``open`` then uploads for its
    running job of the disk's machine (started on first use). ``Agent(text)`` alone only
    sends that Authorization text (for the credential error tests)."""

    def __init__(self, token: str, agent=None):
        self.token, self.agent = token, agent
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    @classmethod
    def enrolled(cls, customer, **kwargs) -> "Agent":
        return cls(*reversed(enroll(customer, **kwargs)))

    def post_json(self, url, data):
        return self.client.post(url, data, format="json")

    def job_for(self, machine) -> ReplicationJob:
        return running_job(self.agent, machine)

    def open(self, disk, **extra):
        body = {"machine": disk.machine_id, "disk": disk.key}
        mine = self.agent is not None and disk.customer_id == self.agent.customer_id
        if mine and "job" not in extra:
            body["job"] = self.job_for(disk.machine).pk
        return self.post_json("/api/v1/agent/upload-sessions/", {**body, **extra})

    def missing(self, session_id, digests: list[bytes]):
        url = f"/api/v1/agent/upload-sessions/{session_id}/missing/"
        return self.post_json(url, {"digests": [d.hex() for d in digests]})

    def upload(self, session_id, chunks: list[bytes], body: bytes | None = None):
        url = f"/api/v1/agent/upload-sessions/{session_id}/chunks/"
        return self.client.generic(
            "POST", url, body if body is not None else batch(chunks), "application/octet-stream"
        )

    def commit_full(self, session_id, data: bytes, chunk_size=CHUNK):
        digests = b"".join(digest_of(c) for c in split(data, chunk_size))
        return self.post_json(
            f"/api/v1/agent/upload-sessions/{session_id}/commit/",
            {"disk_size": len(data), "index": base64.b64encode(digests).decode()},
        )

    def commit_delta(self, session_id, disk_size, base_checksum, changes):
        raw = b"".join(struct.pack(">Q32s", pos, digest) for pos, digest in changes)
        return self.post_json(
            f"/api/v1/agent/upload-sessions/{session_id}/commit/",
            {
                "disk_size": disk_size,
                "base_checksum": base_checksum,
                "changes": base64.b64encode(raw).decode(),
            },
        )

    def replicate(self, disk, data: bytes) -> dict:
        """A whole replication: open, ask, upload what is missing, commit the full index."""
        session = self.open(disk).json()
        chunks = split(data)
        nonzero = [c for c in chunks if c.strip(b"\0")]
        missing = set(
            self.missing(session["id"], [digest_of(c) for c in nonzero]).json()["missing"]
        )
        to_send = {hashlib.sha256(c).hexdigest(): c for c in nonzero}
        todo = [c for d, c in to_send.items() if d in missing]
        if todo:
            assert self.upload(session["id"], todo).status_code == 200
        response = self.commit_full(session["id"], data)
        assert response.status_code == 201, response.content
        return {"session": session, "snapshot": response.json(), "uploaded": len(todo)}

    def image(self, snapshot_id, **headers):
        return self.client.get(f"/api/v1/agent/snapshots/{snapshot_id}/image/", **headers)


def read_stream(response) -> bytes:
    return b"".join(response.streaming_content)
