"""Encryption end to end: replicate and restore through the API with ACURA_MASTER_KEYS set,
nothing readable at rest, a clear failure without the key, and master key rotation
(``manage.py rewrap_data_keys``) that re-wraps data keys without touching the blobs."""

import base64
import json
import os
import random
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from storage.models import CustomerStore, Snapshot
from storage.services import context
from storage.services.context import StoreKeyUnavailable
from storage.services.restore import SnapshotImage
from storage.store.blob import blob_info
from storage.store.keys import key_id

from .conftest import CHUNK, digest_of, make_disk, read_stream, split
from .error_support import SESSIONS, error_of

MARKER = b"ACURA-PLAINTEXT-MARKER-7f3a9c0e"


def new_master() -> tuple[str, bytes]:
    raw = os.urandom(32)
    return base64.b64encode(raw).decode(), raw


def use_keys(settings, value: str) -> None:
    settings.STORE_MASTER_KEYS = value
    context._keyring.cache_clear()


def disk_image(seed: int) -> bytes:
    """Text-like (compressible), random (stored as is: carries the marker) and all-zero
    chunks."""
    rnd = random.Random(seed)
    text = b"".join(MARKER + b" record %6d\n" % i for i in range(CHUNK // 32))
    marked = rnd.randbytes(1000) + MARKER + rnd.randbytes(CHUNK - 1000 - len(MARKER))
    parts = [text[:CHUNK], marked, bytes(CHUNK), rnd.randbytes(CHUNK)]
    return b"".join(parts)[:-123]


def blob_files(root, customer) -> dict:
    namespace = CustomerStore.objects.get(customer=customer).namespace
    return {p: p.read_bytes() for p in (root / namespace / "chunks").rglob("*") if p.is_file()}


def readable(files: dict, data: bytes) -> bool:
    """Is the marker, or any 64-byte piece of the random chunks, readable in a blob?"""
    pieces = [MARKER] + [data[i : i + 64] for i in range(CHUNK, 2 * CHUNK, 4096)]
    return any(piece in blob for blob in files.values() for piece in pieces)


@pytest.fixture
def master(settings):
    value, raw = new_master()
    use_keys(settings, value)
    return raw


def test_without_keys_blobs_are_plain_and_searchable(agent, customer, isolated_store):
    """The control for the search below: it does find plaintext in unencrypted blobs."""
    data = disk_image(1)
    agent.replicate(make_disk(customer), data)
    files = blob_files(isolated_store, customer)
    assert len(files) == 3 and readable(files, data)
    assert any(MARKER in blob for blob in files.values())
    assert not any(blob_info(blob)[1] for blob in files.values())
    assert CustomerStore.objects.get(customer=customer).wrapped_data_key is None


def test_encrypted_replicate_and_restore_bit_exact(master, agent, customer, isolated_store):
    disk = make_disk(customer)
    data = disk_image(2)
    first = agent.replicate(disk, data)["snapshot"]
    changed = bytearray(data)
    changed[3 * CHUNK + 5 : 3 * CHUNK + 9] = b"EDIT"
    changed = bytes(changed)
    session = agent.open(disk).json()
    edited = split(changed)[3]
    assert agent.upload(session["id"], [edited]).status_code == 200
    second = agent.commit_delta(
        session["id"], len(changed), first["index_checksum"], [(3, digest_of(edited))]
    ).json()

    assert read_stream(agent.image(first["id"])) == data
    assert read_stream(agent.image(second["id"])) == changed
    ranged = agent.image(second["id"], HTTP_RANGE=f"bytes={CHUNK - 10}-{3 * CHUNK + 20}")
    assert ranged.status_code == 206
    assert read_stream(ranged) == changed[CHUNK - 10 : 3 * CHUNK + 21]

    store = CustomerStore.objects.get(customer=customer)
    assert store.encrypted and bytes(store.wrapped_data_key)[:8] == key_id(master)
    files = blob_files(isolated_store, customer)
    assert len(files) == 4
    assert all(blob_info(blob)[1] for blob in files.values())
    assert not readable(files, data)
    assert not any(master in blob for blob in files.values())


def test_restore_fails_clearly_without_the_key(master, settings, agent, customer):
    disk = make_disk(customer)
    data = disk_image(3)
    snapshot_id = agent.replicate(disk, data)["snapshot"]["id"]
    snapshot = Snapshot.objects.for_customer(customer).get(pk=snapshot_id)

    use_keys(settings, "")
    with pytest.raises(StoreKeyUnavailable, match="encrypted but ACURA_MASTER_KEYS is not set"):
        SnapshotImage.open(snapshot)
    error_of(agent.image(snapshot_id), 503, "encryption keys are not configured")
    session = agent.open(disk).json()["id"]
    error_of(agent.upload(session, [os.urandom(CHUNK)]), 503)

    use_keys(settings, new_master()[0])  # a key, but not the one that wrapped the data key
    with pytest.raises(StoreKeyUnavailable, match="cannot be unwrapped"):
        SnapshotImage.open(snapshot)
    error_of(agent.image(snapshot_id), 503)

    use_keys(settings, base64.b64encode(master).decode())
    assert read_stream(agent.image(snapshot_id)) == data


def rewrap() -> dict:
    out = StringIO()
    call_command("rewrap_data_keys", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_master_key_rotation_rewraps_without_reencrypting(
    settings, agent, other_agent, customer, other_customer, isolated_store
):
    old, old_raw = new_master()
    new, new_raw = new_master()
    use_keys(settings, old)
    disk = make_disk(customer)
    data = disk_image(4)
    snapshot_id = agent.replicate(disk, data)["snapshot"]["id"]
    other_data = disk_image(5)
    other_id = other_agent.replicate(make_disk(other_customer), other_data)["snapshot"]["id"]
    blobs_before = blob_files(isolated_store, customer)

    use_keys(settings, new)  # dropped the old master too early: refused, nothing lost
    error_of(agent.image(snapshot_id), 503)

    use_keys(settings, f"{new},{old}")
    assert rewrap() == {"stores": 2, "rewrapped": 2, "unencrypted": 0, "failed": []}
    for store in CustomerStore.objects.all():
        assert bytes(store.wrapped_data_key)[:8] == key_id(new_raw)
    assert rewrap()["rewrapped"] == 0  # idempotent

    use_keys(settings, new)
    assert read_stream(agent.image(snapshot_id)) == data
    assert read_stream(other_agent.image(other_id)) == other_data
    assert blob_files(isolated_store, customer) == blobs_before  # byte for byte
    # Replication continues under the new master: the base is found, chunks dedup.
    session = agent.open(disk).json()
    assert session["base_snapshot"] == snapshot_id
    digests = [digest_of(c) for c in split(data) if c.strip(b"\0")]
    assert agent.missing(session["id"], digests).json()["missing"] == []
    assert agent.commit_full(session["id"], data).status_code == 201
    assert old_raw not in b"".join(bytes(s.wrapped_data_key) for s in CustomerStore.objects.all())


def test_rewrap_counts_unencrypted_stores_and_reports_unknown_masters(
    settings, agent, other_agent, customer, other_customer
):
    agent.replicate(make_disk(customer), disk_image(6))  # no keys yet: unencrypted
    lost, _ = new_master()
    use_keys(settings, lost)
    other_agent.replicate(make_disk(other_customer), disk_image(7))
    use_keys(settings, new_master()[0])  # `lost` is not configured any more
    out = StringIO()
    with pytest.raises(CommandError, match="could not be unwrapped"):
        call_command("rewrap_data_keys", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["stores"] == 1 and summary["rewrapped"] == 0
    assert summary["unencrypted"] == 1
    assert summary["failed"] and summary["failed"][0].startswith("globex: ")


@pytest.mark.parametrize(
    ("value", "message"),  # fixed values: xdist workers must agree on the test ids
    [
        ("", "ACURA_MASTER_KEYS is not set"),
        ("   ", "ACURA_MASTER_KEYS is not set"),
        ("not base64!", "malformed: ACURA_MASTER_KEYS entry 1 is not valid base64"),
        (base64.b64encode(b"short").decode(), "decodes to 5 bytes"),
        (base64.b64encode(bytes(range(32))).decode() + ",", "empty entry"),
    ],
)
def test_rewrap_refuses_a_missing_or_malformed_configuration(settings, customer, value, message):
    use_keys(settings, value)
    with pytest.raises(CommandError, match=message):
        call_command("rewrap_data_keys", stdout=StringIO())


def test_agent_cannot_upload_into_an_encrypted_store_without_keys(
    master, settings, agent, customer
):
    disk = make_disk(customer)
    agent.replicate(disk, disk_image(8))
    session = agent.open(disk).json()["id"]
    use_keys(settings, "")
    response = agent.post_json(f"{SESSIONS}{session}/commit/", {"disk_size": 0, "index": ""})
    error_of(response, 503)
    assert Snapshot.objects.for_customer(customer).count() == 1
