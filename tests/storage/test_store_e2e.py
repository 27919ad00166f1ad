"""The upload protocol over real HTTP against `manage.py serve` (gunicorn, SQLite or
PostgreSQL as configured), then restore through the image endpoint: bit-exact."""

import base64
import hashlib
import json
import os
import struct
import sys
import urllib.request

import pytest
import zstandard

from tests.e2e_support import Process, free_port, isolated_env, manage, wait_http_ok

pytestmark = pytest.mark.e2e

CHUNK = 1024 * 1024
SETUP = """
from tenants.services import customer_create
from clouds.services import agent_enroll, enrollment_token_create
from protection.services.jobs import job_start_for_agent
from protection.models import Machine, Disk
customer = customer_create(slug="e2e", name="E2E").customer
token = enrollment_token_create(customer, platform="linux").text
enrolled = agent_enroll(token, hostname="e2e", version="test")
machine = Machine.objects.create(
    customer=customer, name="vm", platform="linux", status="protected", agent=enrolled.agent
)
Disk.objects.create(customer=customer, machine=machine, key="sda", size_bytes=0)
job = job_start_for_agent(customer, enrolled.agent, machine)
print(machine.pk, enrolled.text, job.pk)
"""


class HttpAgent:
    def __init__(self, base, token, job=None):
        self.base, self.token, self.job = base, token, job

    def call(self, method, path, body=None, content_type="application/json", headers=None):
        data = json.dumps(body).encode() if content_type == "application/json" else body
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": content_type,
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def replicate(self, machine, data):
        status, body, _ = self.call(
            "POST",
            "/api/v1/agent/upload-sessions/",
            {"machine": machine, "disk": "sda", "job": self.job},
        )
        assert status in (200, 201), body
        session = json.loads(body)["id"]
        chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
        digests = [bytes(32) if not c.strip(b"\0") else hashlib.sha256(c).digest() for c in chunks]
        status, body, _ = self.call(
            "POST",
            f"/api/v1/agent/upload-sessions/{session}/missing/",
            {"digests": [d.hex() for d in digests if d != bytes(32)]},
        )
        missing = set(json.loads(body)["missing"])
        compressor = zstandard.ZstdCompressor(level=1)
        records, sent = [], set()
        for chunk, digest in zip(chunks, digests, strict=True):
            if digest.hex() in missing and digest.hex() not in sent:
                sent.add(digest.hex())
                frame = compressor.compress(chunk)
                records.append(struct.pack(">32sII", digest, len(chunk), len(frame)) + frame)
        if records:
            status, body, _ = self.call(
                "POST",
                f"/api/v1/agent/upload-sessions/{session}/chunks/",
                b"".join(records),
                "application/octet-stream",
            )
            assert status == 200, body
        status, body, _ = self.call(
            "POST",
            f"/api/v1/agent/upload-sessions/{session}/commit/",
            {"disk_size": len(data), "index": base64.b64encode(b"".join(digests)).decode()},
        )
        assert status == 201, body
        return json.loads(body), len(sent)


def test_replicate_and_restore_over_http(tmp_path):
    with isolated_env(tmp_path) as env:
        env["ACURA_CHUNK_SIZE"] = str(CHUNK)  # the data below is laid out in 1 MiB chunks
        assert manage(["migrate", "-v", "0"], env).returncode == 0
        setup = manage(["shell", "-v", "0", "-c", SETUP], env)
        assert setup.returncode == 0, setup.stderr
        machine, token, job = setup.stdout.split()
        port = free_port()
        server = Process(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--no-demo"], env
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http_ok(base + "/healthz", timeout=60)
            agent = HttpAgent(base, token, int(job))
            first = os.urandom(5 * CHUNK) + bytes(2 * CHUNK) + os.urandom(CHUNK // 2)
            snap1, sent1 = agent.replicate(int(machine), first)
            assert sent1 == 6
            second = first[:CHUNK] + os.urandom(CHUNK) + first[2 * CHUNK :]
            snap2, sent2 = agent.replicate(int(machine), second)
            assert sent2 == 1  # only the changed chunk crossed the wire
            for snap, data in ((snap1, first), (snap2, second)):
                status, body, headers = agent.call(
                    "GET", f"/api/v1/agent/snapshots/{snap['id']}/image/"
                )
                assert status == 200 and body == data
                assert headers["X-Index-Checksum"] == snap["index_checksum"]
            status, body, headers = agent.call(
                "GET",
                f"/api/v1/agent/snapshots/{snap2['id']}/image/",
                headers={"Range": f"bytes={CHUNK - 10}-{CHUNK + 9}"},
            )
            assert status == 206 and body == second[CHUNK - 10 : CHUNK + 10]
            status, body, _ = HttpAgent(base, "acag_000000000000.wrong").call(
                "GET", "/api/v1/agent/snapshots/"
            )
            assert status == 401 and b"Unknown agent credential." in body
        finally:
            server.stop()
            server.kill_group()
