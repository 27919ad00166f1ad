"""The per-process cache of materialized indexes, and the missing-query's activity writes."""

import os
from datetime import timedelta

from django.utils import timezone

from storage.models import UploadSession
from storage.services import indexes
from storage.services.indexes import IndexCache
from storage.services.sessions import session_missing
from storage.services.verify import verify_customer
from storage.store.index import Index

from .conftest import CHUNK, make_disk


def _index(entries: int) -> Index:
    return Index(CHUNK, entries * CHUNK, os.urandom(32 * entries))


def test_least_recently_used_indexes_leave_first_past_the_byte_budget():
    cache = IndexCache(max_bytes=32 * 10)
    a, b, c = _index(4), _index(4), _index(4)
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recently used
    cache.put("c", c)  # 12 entries > 10: the least recently used (b) goes
    assert cache.get("b") is None
    assert cache.get("a") is a and cache.get("c") is c


def test_an_index_larger_than_the_budget_is_not_cached():
    cache = IndexCache(max_bytes=32 * 3)
    cache.put("big", _index(4))
    assert cache.get("big") is None


def test_restores_reuse_the_cached_index_and_verify_reads_the_files(agent, customer, monkeypatch):
    disk = make_disk(customer)
    data = os.urandom(3 * CHUNK)
    snapshot_id = agent.replicate(disk, data)["snapshot"]["id"]
    indexes.INDEX_CACHE.clear()
    reads = []
    original = indexes.decode_index_file
    monkeypatch.setattr(indexes, "decode_index_file", lambda raw: reads.append(1) or original(raw))
    for _ in range(3):
        response = agent.image(snapshot_id, HTTP_RANGE=f"bytes=0-{CHUNK - 1}")
        assert response.status_code == 206
        assert b"".join(response.streaming_content) == data[:CHUNK]
    assert len(reads) == 1  # read once, then served from the cache
    verify_customer(customer)
    assert len(reads) == 2  # verify re-reads the stored index file


def test_missing_queries_write_the_session_activity_at_most_once_a_minute(agent, customer):
    disk = make_disk(customer)
    session_id = agent.open(disk).json()["id"]
    session = UploadSession.objects.for_customer(customer).get(pk=session_id)
    stamp = session.last_activity_at
    session_missing(session, ["ab" * 32])
    session.refresh_from_db()
    assert session.last_activity_at == stamp
    old = timezone.now() - timedelta(minutes=5)
    UploadSession.objects.for_customer(customer).filter(pk=session.pk).update(last_activity_at=old)
    session.refresh_from_db()
    session_missing(session, ["ab" * 32])
    session.refresh_from_db()
    assert session.last_activity_at > old
