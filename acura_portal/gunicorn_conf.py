"""gunicorn settings used by ``manage.py serve`` (and usable in production with
``gunicorn -c python:acura_portal.gunicorn_conf``): gunicorn's own log lines take the
portal's one format; requests are logged by the portal's middleware, with their id, so
gunicorn's access log stays off."""

from acura_portal.logging import stdout_logging

accesslog = None
# gunicorn's control socket lives at one fixed path per user: several portals (or test runs)
# on one machine would fight over it, and nothing here uses it.
control_socket_disable = True
logconfig_dict = stdout_logging(
    "INFO",
    {
        "gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
)
