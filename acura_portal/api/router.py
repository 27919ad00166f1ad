"""The one API router under /api/v1/ and the JSON error format every endpoint shares."""

from rest_framework.routers import DefaultRouter
from rest_framework.views import exception_handler as drf_exception_handler

router = DefaultRouter(trailing_slash=True)


def exception_handler(exc, context):
    """Wrap DRF errors as ``{"error": {"status", "message", "details"}}``.

    Clients (the agent, scripts) get one shape for every failure: a human-readable
    ``message`` plus, for validation errors, field-level ``details``.
    """
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        message, details = str(data["detail"]), None
    elif isinstance(data, dict):
        message, details = "Invalid input.", data
    elif isinstance(data, list):
        message, details = "; ".join(str(item) for item in data), data
    else:
        message, details = str(data), None
    body = {"error": {"status": response.status_code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    response.data = body
    return response
