"""/healthz: 200 when database, broker and data folder work; 503 naming what is down."""

import pytest
from django.db import OperationalError


@pytest.fixture
def health(client, db):
    def get():
        response = client.get("/healthz")
        return response.status_code, response.json()

    return get


def test_healthy(health):
    status, body = health()
    assert status == 200
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "data_dir": True,
    }


def test_broker_down_gives_503(health, monkeypatch):
    from acura_portal.celery import app

    # A port nothing listens on: the real client gets a real "connection refused".
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        status, body = health()
    finally:
        app.conf.broker_url = original
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert "error" in body["checks"]["broker"]
    assert body["checks"]["database"]["ok"] is True


def test_data_dir_unusable_gives_503(health, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings.DATA_DIR = blocker / "data"
    status, body = health()
    assert status == 503
    assert body["checks"]["data_dir"]["ok"] is False
    assert "NotADirectoryError" in body["checks"]["data_dir"]["error"]


def test_database_down_gives_503(health, monkeypatch):
    from acura_portal import health as health_module

    # Fault injection: a real database outage can't be produced inside the test's own
    # transaction, so the cursor raises what psycopg/sqlite raise when the server is gone.
    class BrokenConnection:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(health_module, "connection", BrokenConnection())
    status, body = health()
    assert status == 503
    assert body["checks"]["database"] == {
        "ok": False,
        "ms": body["checks"]["database"]["ms"],
        "error": "OperationalError: connection refused",
    }


def test_healthz_is_not_cached_and_carries_request_id(client, db):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-probe-1")
    assert response["X-Request-ID"] == "lb-probe-1"
    assert "no-cache" in response["Cache-Control"]


def test_bad_request_id_is_replaced(client, db):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32
