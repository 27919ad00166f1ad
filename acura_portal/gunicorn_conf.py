"""gunicorn settings used by ``manage.py serve`` (and usable in production with
``gunicorn -c python:acura_portal.gunicorn_conf``): gunicorn's own log lines take the
portal's one format; requests are logged by the portal's middleware, with their id, so
gunicorn's access log stays off."""

from acura_portal.logging import LOG_FORMAT

accesslog = None
# gunicorn's control socket lives at one fixed path per user: several portals (or test runs)
# on one machine would fight over it, and nothing here uses it.
control_socket_disable = True
logconfig_dict = {
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
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
    "root": {"handlers": ["stdout"], "level": "INFO"},
}
