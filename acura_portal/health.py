"""``/healthz``: the state of the database, the broker and the data folder.

Load balancers look at the status code (200 all good, 503 something down); humans and
monitoring read the JSON, which names the failing part and why.
"""

import time
import uuid

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_broker() -> str | None:
    from acura_portal.celery import app

    try:
        # One attempt, no back-off: a probe must answer fast, and the balancer retries.
        with app.connection_for_write(connect_timeout=2) as conn:
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=2
            )
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_data_dir() -> str | None:
    probe = settings.DATA_DIR / f".healthz-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


CHECKS = {"database": check_database, "broker": check_broker, "data_dir": check_data_dir}


@never_cache
@require_GET
def healthz(request):
    results = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.monotonic()
        error = check()
        entry = {"ok": error is None, "ms": round((time.monotonic() - started) * 1000, 1)}
        if error:
            entry["error"] = error
            healthy = False
        results[name] = entry
    body = {"status": "ok" if healthy else "unavailable", "checks": results}
    return JsonResponse(body, status=200 if healthy else 503)
