"""Project-wide middleware."""

import logging
import time

from .logging import new_request_id, request_id_var

logger = logging.getLogger("acura.request")


class RequestIdMiddleware:
    """Tags the request (and its log lines) with an id and logs one line per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        token = request_id_var.set(request_id)
        request.request_id = request_id
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            elapsed_ms = (time.monotonic() - started) * 1000
            if not request.path.startswith("/static/"):
                logger.info(
                    "%s %s %s %.1fms",
                    request.method,
                    request.get_full_path(),
                    response.status_code,
                    elapsed_ms,
                )
            return response
        finally:
            request_id_var.reset(token)
