"""Helpers for tests that replicate through the upload API as an agent would."""

import base64
import hashlib
import struct

import zstandard
from rest_framework.test import APIClient

from tests.factories import DiskFactory, MachineFactory

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


class Agent:
    """Speaks the upload protocol through the test client, as an agent would."""

    def __init__(self, token: str):
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post_json(self, url, data):
        return self.client.post(url, data, format="json")

    def open(self, disk):
        return self.post_json(
            "/api/v1/agent/upload-sessions/", {"machine": disk.machine_id, "disk": disk.key}
        )

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
