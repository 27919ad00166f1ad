"""Every error path of the agent API: a clear JSON error, and nothing changed.

Each test records the observable state (catalog rows, sessions, snapshots, index files, the
files of the store) before the bad request and compares it afterwards.
"""

import hashlib

import pytest
import zstandard

from clouds.models import AgentCredential
from clouds.services import agent_credential_revoke
from protection.models import ReplicationJob
from storage.models import Chunk, UploadSession
from tests.factories import MachineFactory

from .conftest import CHUNK, Agent, batch, make_disk
from .error_support import (
    SESSIONS,
    SNAPSHOTS,
    Unchanged,
    error_of,
    post,
    rand_chunk,
    record,
    zframe,
)


@pytest.fixture
def unchanged(customer, isolated_store):
    return Unchanged(customer, isolated_store)


@pytest.fixture
def disk(customer):
    return make_disk(customer)


@pytest.fixture
def session(agent, disk):
    """An open first session (no base)."""
    return agent.open(disk).json()["id"]


# -- authentication ----------------------------------------------------------------------


def endpoints(session_id, snapshot_id):
    return [
        ("post", SESSIONS),
        ("get", f"{SESSIONS}{session_id}/"),
        ("post", f"{SESSIONS}{session_id}/missing/"),
        ("post", f"{SESSIONS}{session_id}/chunks/"),
        ("post", f"{SESSIONS}{session_id}/commit/"),
        ("post", f"{SESSIONS}{session_id}/abort/"),
        ("get", SNAPSHOTS),
        ("get", f"{SNAPSHOTS}{snapshot_id}/"),
        ("get", f"{SNAPSHOTS}{snapshot_id}/index/"),
        ("get", f"{SNAPSHOTS}{snapshot_id}/image/"),
    ]


def test_no_credentials_is_401_with_challenge_everywhere(agent, disk, client, unchanged):
    snapshot = agent.replicate(disk, rand_chunk())["snapshot"]
    session_id = agent.open(disk).json()["id"]
    unchanged()
    for method, url in endpoints(session_id, snapshot["id"]):
        response = getattr(client, method)(url)
        error_of(response, 401, "Authorization: Bearer")
        assert response["WWW-Authenticate"] == 'Bearer realm="acura-agent"'
    unchanged.check()


def test_portal_login_is_not_an_agent_credential(disk, admin_client_, unchanged):
    unchanged()
    response = admin_client_.post(SESSIONS, {}, content_type="application/json")
    error_of(response, 401)
    unchanged.check()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer", "Malformed agent credential"),
        ("Bearer nonsense", "Malformed agent credential"),
        ("Bearer acag_", "Malformed agent credential"),
        ("Bearer acag_deadbeef", "Malformed agent credential"),
        ("Bearer acag_deadbeef.", "Malformed agent credential"),
        ("Bearer acag_.secret", "Malformed agent credential"),
        ("Bearer ak_deadbeef.secret", "Malformed agent credential"),  # the old API keys
        ("Bearer acet_deadbeef.secret", "Malformed agent credential"),  # enrollment token
        ("Bearer acag_deadbeef.not-the-secret", "Unknown agent credential."),
        ("bearer acag_0000.x", "Unknown agent credential."),
    ],
)
def test_malformed_or_unknown_credential_is_401(disk, header, message, unchanged):
    agent = Agent("unused")
    agent.client.credentials(HTTP_AUTHORIZATION=header)
    unchanged()
    response = agent.open(disk)
    error_of(response, 401, message)
    assert response["WWW-Authenticate"] == 'Bearer realm="acura-agent"'
    unchanged.check()
    assert not UploadSession.objects.for_customer(disk.customer).exists()


def test_right_prefix_wrong_secret_is_401(customer, disk, agent, unchanged):
    credential = AgentCredential.objects.for_customer(customer).get(agent=agent.agent)
    unchanged()
    error_of(Agent(agent.token + "x").open(disk), 401, "Unknown agent credential.")
    unchanged.check()
    credential.refresh_from_db()
    assert credential.last_used_at is None  # a failed attempt is not a use


def test_other_scheme_is_not_ours(disk):
    agent = Agent("unused")
    agent.client.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    error_of(agent.open(disk), 401, "Authorization: Bearer")


def test_revoked_credential_is_401(customer, disk, agent, unchanged):
    job = agent.job_for(disk.machine)
    agent_credential_revoke(agent.agent)
    unchanged()
    error_of(agent.open(disk), 401, "This agent credential was revoked")
    error_of(agent.client.get(SNAPSHOTS), 401, "revoked")
    unchanged.check()
    assert job.upload_sessions.count() == 0


def test_credential_of_inactive_customer_is_401(customer, disk, agent, unchanged):
    customer.is_active = False
    customer.save()
    unchanged()
    error_of(agent.open(disk), 401, "inactive")
    error_of(agent.client.get(SNAPSHOTS), 401, "inactive")
    unchanged.check()


# -- open --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"machine": 999999, "disk": "disk-1"}, "machine", "No such machine."),
        ({"machine": 2**70, "disk": "disk-1"}, "machine", None),
        ({"machine": -1, "disk": "disk-1"}, "machine", None),
        ({"machine": "web-01", "disk": "disk-1"}, "machine", None),
        ({"disk": "disk-1"}, "machine", "This field is required."),
        ({"machine": "MACHINE"}, "disk", "This field is required."),
        ({"machine": "MACHINE", "disk": "nope"}, "disk", "No disk with this key"),
        ({"machine": "MACHINE", "disk": "disk-1", "taken_at": "yesterday"}, "taken_at", None),
        ({"machine": "MACHINE", "disk": "disk-1", "job": "j"}, "job", None),
    ],
)
def test_open_with_bad_fields(agent, disk, unchanged, body, field, message):
    body = {k: disk.machine_id if v == "MACHINE" else v for k, v in body.items()}
    body.setdefault("job", agent.job_for(disk.machine).pk)
    unchanged()
    error = error_of(agent.post_json(SESSIONS, body), 400)
    assert field in error["details"]
    if message:
        assert message in str(error["details"][field])
    unchanged.check()


def test_open_disk_of_another_machine(agent, customer, disk, unchanged):
    other = MachineFactory(customer=customer)
    job = agent.job_for(other)
    unchanged()
    response = agent.post_json(SESSIONS, {"machine": other.pk, "disk": disk.key, "job": job.pk})
    assert "No disk with this key" in str(error_of(response, 400)["details"]["disk"])
    unchanged.check()


def test_open_needs_the_job(agent, disk, unchanged):
    unchanged()
    response = agent.post_json(SESSIONS, {"machine": disk.machine_id, "disk": disk.key})
    assert error_of(response, 400)["details"]["job"] == ["This field is required."]
    unchanged.check()


def test_open_with_a_job_of_another_agent_or_customer_is_404(
    agent, disk, customer, other_customer, unchanged
):
    colleague = Agent.enrolled(customer, hostname="second agent")
    theirs = colleague.job_for(make_disk(customer, key="theirs").machine)
    stranger = Agent.enrolled(other_customer)
    foreign = stranger.job_for(make_disk(other_customer).machine)
    unchanged()
    for job in (theirs, foreign):
        error = error_of(agent.open(disk, job=job.pk), 404, f"No job {job.pk} of this agent.")
        assert error["details"]["code"] == "not_found"
    unchanged.check()


def test_open_with_the_job_of_another_machine_is_400(agent, customer, disk, unchanged):
    other_job = agent.job_for(make_disk(customer, key="elsewhere").machine)
    unchanged()
    error = error_of(agent.open(disk, job=other_job.pk), 400, "replicates another machine")
    assert error["details"]["code"] == "wrong_machine"
    unchanged.check()


@pytest.mark.parametrize("state", ["queued", "cancelled", "failed", "succeeded"])
def test_open_for_a_job_that_is_not_running_is_409(agent, customer, disk, unchanged, state):
    job = agent.job_for(disk.machine)
    ReplicationJob.objects.for_customer(customer).filter(pk=job.pk).update(state=state)
    unchanged()
    error = error_of(agent.open(disk, job=job.pk), 409, f"Job {job.pk} is not running")
    assert error["details"] == {"code": "not_running", "state": state}
    unchanged.check()


def test_open_links_the_session_to_the_job(agent, disk):
    job = agent.job_for(disk.machine)
    session = agent.open(disk).json()["id"]
    assert UploadSession.objects.for_customer(disk.customer).get(pk=session).job == job


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"machine": 1, ', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
)
def test_open_with_unparsable_body(agent, disk, unchanged, body, message):
    unchanged()
    error_of(post(agent, SESSIONS, body), 400, message)
    unchanged.check()


# -- missing-query -----------------------------------------------------------------------


def missing_url(session_id):
    return f"{SESSIONS}{session_id}/missing/"


@pytest.mark.parametrize(
    "digests",
    [
        ["zz" * 32],
        ["AB" * 32],
        ["ab" * 31 + "aB"],
        ["ab" * 32, " " + "ab" * 31 + "a"],
    ],
    ids=["not-hex", "uppercase", "one-uppercase", "space"],
)
def test_missing_with_bad_hex(agent, session, unchanged, digests):
    unchanged()
    error = error_of(agent.post_json(missing_url(session), {"digests": digests}), 400)
    assert "lowercase hex SHA-256" in error["message"]
    assert error["details"]["code"] == "bad_digest"
    unchanged.check()


@pytest.mark.parametrize(
    "body",
    [
        {"digests": ["ab" * 31 + "a"]},
        {"digests": ["ab" * 32 + "a"]},
        {"digests": [""]},
        {"digests": ["ab" * 32 + " "]},
        {"digests": "ab" * 32},
        {"digests": [1234]},
        {},
    ],
    ids=["63", "65", "empty", "trailing-space", "not-a-list", "number", "absent"],
)
def test_missing_with_malformed_digests(agent, session, unchanged, body):
    unchanged()
    error = error_of(agent.post_json(missing_url(session), body), 400)
    assert "digests" in error["details"]
    unchanged.check()


def test_missing_with_too_many_digests(agent, session, settings, unchanged):
    settings.STORE_MAX_DIGESTS_PER_QUERY = 3
    digests = [hashlib.sha256(bytes([i])).hexdigest() for i in range(4)]
    unchanged()
    error = error_of(agent.post_json(missing_url(session), {"digests": digests}), 400)
    assert "At most 3 digests" in error["message"] and error["details"]["code"] == "too_many"
    unchanged.check()
    ok = agent.post_json(missing_url(session), {"digests": digests[:3]})
    assert ok.status_code == 200 and ok.json()["missing"] == digests[:3]


@pytest.mark.parametrize("close", ["commit", "abort"])
def test_missing_on_a_closed_session_is_409(agent, disk, close, unchanged):
    session = agent.open(disk).json()["id"]
    if close == "commit":
        assert agent.commit_full(session, b"").status_code == 201
    else:
        assert agent.client.post(f"{SESSIONS}{session}/abort/").status_code == 200
    unchanged()
    response = agent.missing(session, [hashlib.sha256(b"x").digest()])
    error = error_of(response, 409, "open a new one")
    assert error["details"]["code"] == "session_closed"
    unchanged.check()


# -- chunk upload ------------------------------------------------------------------------


def chunks_url(session_id):
    return f"{SESSIONS}{session_id}/chunks/"


def upload(agent, session_id, body: bytes, **extra):
    return post(agent, chunks_url(session_id), body, "application/octet-stream", **extra)


def test_truncated_record_header_rejects_the_whole_batch(agent, session, unchanged):
    good = batch([rand_chunk()])
    unchanged()
    error_of(upload(agent, session, b"\x01" * 10), 400, "Truncated record header at byte 0")
    error_of(upload(agent, session, good + b"\x01" * 5), 400, f"at byte {len(good)}")
    unchanged.check()


def test_truncated_frame_rejects_the_whole_batch(agent, session, unchanged):
    chunk = rand_chunk()
    body = batch([rand_chunk()]) + batch([chunk])[:-10]
    unchanged()
    error_of(upload(agent, session, body), 400, f"Truncated chunk data for {sha(chunk)}")
    unchanged.check()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def failed_upload(agent, session_id, body: bytes) -> dict:
    """A 400 for failing records: the error shape plus the per-batch counts."""
    response = upload(agent, session_id, body)
    error = error_of(response, 400, "failed verification")
    assert error["details"]["code"] == "chunks_failed"
    assert response.json()["failed"] == error["details"]["failed"]
    return response.json()


def test_digest_mismatch_stores_the_good_records_only(agent, customer, session, isolated_store):
    first, second, lie = rand_chunk(), rand_chunk(), rand_chunk()
    wrong_digest = hashlib.sha256(b"something else").digest()
    body = batch([first]) + record(wrong_digest, CHUNK, zframe(lie)) + batch([second])
    result = failed_upload(agent, session, body)
    assert result["stored"] == 2
    assert [f["digest"] for f in result["failed"]] == [wrong_digest.hex()]
    assert "SHA-256" in result["failed"][0]["error"]
    stored = set(Chunk.objects.for_customer(customer).values_list("digest", flat=True))
    assert stored == {sha(first), sha(second)}
    names = {p.name for p in isolated_store.rglob("*") if p.is_file()}
    assert sha(first) in names and sha(second) in names
    assert wrong_digest.hex() not in names and sha(lie) not in names
    opened = UploadSession.objects.for_customer(customer).get()
    assert opened.chunks_uploaded == 2


def bomb_frame(size: int = 1 << 30) -> bytes:
    """A tiny, valid zstd frame of ``size`` zero bytes that declares its size."""
    compressor = zstandard.ZstdCompressor(level=1).compressobj(size=size)
    piece = bytes(1 << 22)
    return b"".join([*(compressor.compress(piece) for _ in range(size >> 22)), compressor.flush()])


def undeclared_frame(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1, write_content_size=False).compress(data)


BAD_RECORDS = {
    # name: (digest, declared plain size, frame, expected error text)
    "size-larger-than-data": lambda c: (sha(c), CHUNK, zframe(c[:-1]), "declared"),
    "size-smaller-than-data": lambda c: (sha(c[:-1]), CHUNK - 1, zframe(c), "would decompress"),
    "size-zero": lambda c: (sha(c), 0, zframe(c), "outside 1..65536"),
    "not-zstd": lambda c: (sha(c), CHUNK, c[:1000], "not a valid zstd frame"),
    "garbage-after-frame": lambda c: (sha(c), CHUNK, zframe(c) + b"x", "not a valid zstd"),
    "bomb": lambda c: (sha(c), CHUNK, bomb_frame(), "would decompress to 1073741824"),
    "undeclared-bomb": lambda c: (sha(c), CHUNK, undeclared_frame(bytes(1 << 22)), "zstd"),
    "all-zero": lambda c: (sha(bytes(CHUNK)), CHUNK, zframe(bytes(CHUNK)), "all-zero"),
    "zero-digest": lambda c: ("00" * 32, CHUNK, zframe(bytes(CHUNK)), "SHA-256"),
    "larger-than-chunk-size": lambda c: (
        sha(c + b"!"),
        CHUNK + 1,
        zframe(c + b"!"),
        "outside 1..65536",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_RECORDS))
def test_bad_record_is_refused_and_stores_nothing(agent, session, unchanged, kind):
    digest_hex, plain_size, frame, message = BAD_RECORDS[kind](rand_chunk())
    unchanged()
    result = failed_upload(agent, session, record(bytes.fromhex(digest_hex), plain_size, frame))
    assert result["stored"] == 0 and result["duplicates"] == 0
    assert [f["digest"] for f in result["failed"]] == [digest_hex]
    assert message in result["failed"][0]["error"]
    unchanged.check()


def test_body_over_the_limit_is_413_before_reading(agent, session, settings, unchanged):
    settings.STORE_MAX_UPLOAD_BYTES = 1000
    unchanged()
    error_of(upload(agent, session, batch([rand_chunk()])), 413, "the limit is 1000")
    # A Content-Length far beyond the body: refused on the header alone (reading would
    # fail on the short body instead).
    error_of(upload(agent, session, b"x" * 10, CONTENT_LENGTH=str(10**15)), 413)
    unchanged.check()


@pytest.mark.parametrize(
    ("length", "message"),
    [("", "Content-Length"), ("abc", "not a valid"), ("-1", "not a valid")],
)
@pytest.mark.parametrize("endpoint", ["chunks", "commit"])
def test_without_a_usable_content_length_is_411(
    agent, session, unchanged, length, message, endpoint
):
    unchanged()
    url = f"{SESSIONS}{session}/{endpoint}/"
    body = batch([rand_chunk()]) if endpoint == "chunks" else b'{"disk_size": 0, "index": ""}'
    error_of(post(agent, url, body, CONTENT_LENGTH=length), 411, message)
    unchanged.check()


def test_upload_to_a_closed_session_is_409(agent, disk, unchanged):
    session = agent.open(disk).json()["id"]
    assert agent.client.post(f"{SESSIONS}{session}/abort/").status_code == 200
    unchanged()
    error = error_of(upload(agent, session, batch([rand_chunk()])), 409, "aborted")
    assert error["details"]["code"] == "session_closed"
    unchanged.check()
