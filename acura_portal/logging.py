"""Request-id propagation into every log line.

The id comes from the caller's ``X-Request-ID`` header when it is sane, otherwise a fresh
one; it is echoed in the response so a support engineer can find the log lines for a
user's failed click. Celery tasks log with their task id in the same slot.
"""

import contextvars
import logging
import re
import uuid

# One line format for every process (web, worker, beat): time, level, pid, request id.
LOG_FORMAT = "%(asctime)s %(levelname)s %(process)d [%(request_id)s] %(name)s: %(message)s"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_request_id(incoming: str | None = None) -> str:
    if incoming and _SAFE_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def stdout_logging(level: str, loggers: dict | None = None) -> dict:
    """A ``logging.config.dictConfig`` dict: everything to stdout in ``LOG_FORMAT``.

    Django's settings and gunicorn's configuration both use it, so web, worker and beat
    processes write the same lines.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "acura_portal.logging.RequestIdFilter"}},
        "formatters": {"line": {"format": LOG_FORMAT}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "filters": ["request_id"],
                "formatter": "line",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": loggers or {},
    }


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` so the one formatter works for every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True
