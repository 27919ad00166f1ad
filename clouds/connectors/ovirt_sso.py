"""The oVirt engine's SSO token and logout exchanges, with a timeout.

ovirtsdk4 4.6.3 sends its SSO requests (``/ovirt-engine/sso/oauth/token`` and
``/ovirt-engine/services/sso-logout``) through a pycurl handle that never gets the
connection's ``timeout``: an engine that accepts the connection and never answers would hang
the wizard's check forever (``tests/clouds/test_ovirt_connector.py`` holds such an engine). So
the connector logs in here, with the same TLS policy as everything else, and hands the SDK the
token; the SDK's own API requests do honour ``timeout``.

The exchange is the SDK's, byte for byte (``/work/shared/docs/ovirt-api.md`` §1): form fields
``grant_type=password&scope=ovirt-app-api&username=…&password=…``, a JSON reply whose
``access_token`` is the token (the HTTP status is not looked at; a wrong login is a 400 with
``error``), and ``scope=ovirt-app-api&token=…`` to log out.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import ssl
import urllib.parse

from . import ConnectorError
from . import tls as tlslib
from .endpoint import Endpoint

TOKEN_PATH = "/ovirt-engine/sso/oauth/token"
LOGOUT_PATH = "/ovirt-engine/services/sso-logout"
_JSON = re.compile(r"^(application|text)/json(;.*)?$", re.I)


def _post(
    endpoint: Endpoint, path: str, fields: dict, *, context: ssl.SSLContext | None, timeout: float
) -> tuple[int, str, bytes]:
    if endpoint.scheme == "https":
        conn = http.client.HTTPSConnection(
            endpoint.host, endpoint.port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=urllib.parse.urlencode(fields),
            headers={
                "Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "AcuraPortal",
            },
        )
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read(1 << 20)
    finally:
        conn.close()


def _failure(exc: Exception, where: str) -> ConnectorError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectorError("tls", f"The certificate of {where} is not the trusted one.")
    if isinstance(exc, ssl.SSLError):
        return ConnectorError("tls", f"TLS with {where} failed: {exc.reason or exc}.")
    network = tlslib.network_error(exc, where)
    if network is not None:
        return network
    return ConnectorError("api", f"{where} did not answer like an oVirt engine.")


def sso_token(
    endpoint: Endpoint,
    username: str,
    password: str,
    *,
    context: ssl.SSLContext | None,
    timeout: float,
) -> str:
    """Log in; returns the access token. Raises ConnectorError (``auth`` on a refusal)."""
    where = endpoint.netloc
    fields = {
        "grant_type": "password",
        "scope": "ovirt-app-api",
        "username": username,
        "password": password,
    }
    try:
        status, content_type, body = _post(
            endpoint, TOKEN_PATH, fields, context=context, timeout=timeout
        )
    except (OSError, http.client.HTTPException) as exc:
        raise _failure(exc, where) from None
    if not _JSON.match(content_type):
        raise ConnectorError(
            "api",
            f"{where} does not answer like an oVirt engine (its single sign-on service "
            f"answered HTTP {status}). Enter the engine's API URL, for example "
            "https://engine.example.com/ovirt-engine/api.",
        )
    try:
        reply = json.loads(body)
    except ValueError:
        raise ConnectorError(
            "api", f"{where} sent a single sign-on reply it cannot read."
        ) from None
    if isinstance(reply, list) and reply:
        reply = reply[0]
    token = reply.get("access_token") if isinstance(reply, dict) else None
    if token and "error" not in reply:
        return token
    raise ConnectorError(
        "auth", f"The user '{username}' was refused by {where}: wrong login or password."
    )


def sso_logout(
    endpoint: Endpoint, token: str, *, context: ssl.SSLContext | None, timeout: float
) -> None:
    """Revoke the token; best effort (the engine expires it anyway)."""
    with contextlib.suppress(OSError, http.client.HTTPException):
        _post(
            endpoint,
            LOGOUT_PATH,
            {"scope": "ovirt-app-api", "token": token},
            context=context,
            timeout=timeout,
        )
