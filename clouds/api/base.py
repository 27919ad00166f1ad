"""The base of every agent endpoint (``/api/v1/agent/``): credential authentication, the
error body with machine-readable details, and bodies read under our own size limits.

The storage app's upload and snapshot endpoints stand on this too (storage depends on
clouds for the agent's identity, never the other way round).
"""

import json

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from protection.services.jobs import JobError
from tenants.api.base import call_service

from .auth import AgentCredentialAuthentication, IsAgent


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."


class LengthRequired(exceptions.APIException):
    status_code = 411
    default_detail = "Send a Content-Length header."


class ProtocolError(exceptions.APIException):
    """A protocol request the service refused. ``error_details`` (a machine-readable
    ``code`` plus extras such as ``missing``) become the error body's ``details``, so an
    agent can react to e.g. ``base_mismatch`` without parsing the message."""

    status_code = 400

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.error_details = details


class Conflict(ProtocolError):
    status_code = 409


class NotFound(ProtocolError):
    status_code = 404


def read_body(request, limit: int) -> bytes:
    """The raw request body, refusing bodies over ``limit`` before reading them."""
    raw_length = request.META.get("CONTENT_LENGTH")
    if not raw_length:
        raise LengthRequired()
    try:
        length = int(raw_length)
    except ValueError:
        raise LengthRequired("Content-Length is not a valid byte count.") from None
    if length < 0:
        raise LengthRequired("Content-Length is not a valid byte count.")
    if length > limit:
        raise PayloadTooLarge(f"The body has {length} bytes; the limit is {limit}.")
    body = request._request.read(length)
    if len(body) != length:
        raise exceptions.ParseError("The body ended before its Content-Length.")
    return body


def read_json(request, limit: int) -> dict:
    try:
        data = json.loads(read_body(request, limit) or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise exceptions.ParseError("The body must be a JSON object.")
    return data


def agent_exception_handler(handler):
    """The project's error format, plus what agent errors carry: ``details`` of a
    ``ProtocolError`` and headers (416's Content-Range)."""

    def handle(exc, context):
        response = handler(exc, context)
        if response is None:
            return None
        details = getattr(exc, "error_details", None)
        if details and isinstance(response.data, dict) and "error" in response.data:
            response.data["error"]["details"] = details
        for name, value in getattr(exc, "headers", {}).items():
            response[name] = value
        return response

    return handle


JOB_ERROR_STATUS = {"not_found": NotFound, "invalid": ProtocolError}


def agent_call(fn, *args, **kwargs):
    """Run a service for an agent request: a ``ValidationError`` is a 400 naming the
    fields; a ``JobError`` is a 404 (not this agent's), a 400 (bad values) or a 409 (the
    job or machine is in the way), with its ``code`` (and the job) in ``details``."""
    try:
        return call_service(fn, *args, **kwargs)
    except JobError as exc:
        details = {"code": exc.code}
        if exc.job is not None and exc.code != "not_found":
            details["job"] = exc.job.pk
            details["state"] = exc.job.state
        raise JOB_ERROR_STATUS.get(exc.code, Conflict)(exc.message, details) from None


class AgentApiMixin:
    """Authenticated by the agent credential; ``self.customer`` and ``self.agent`` are the
    credential's. Anonymous callers get 401 (with the Bearer challenge), never 403."""

    authentication_classes = [AgentCredentialAuthentication]
    permission_classes = [IsAgent]
    parser_classes = [JSONParser]  # bodies are read under our limits (read_json / read_body)

    @property
    def customer(self):
        return self.request.customer

    @property
    def agent(self):
        return self.request.agent

    def get_exception_handler(self):
        return agent_exception_handler(super().get_exception_handler())

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated(IsAgent.message)
        super().permission_denied(request, message=message, code=code)
