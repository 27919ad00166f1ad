"""An oVirt engine session for one job: SSO token, the SDK connection, logout.

The SSO exchange (``/ovirt-engine/sso/oauth/token``, form fields) goes through the agent's own
HTTP client — it has timeouts and the certificate pin; ovirtsdk4's SSO requests have neither —
and the SDK gets the token. With the cloud's pinned ``tls_fingerprint`` the certificate was
checked on that first request and the SDK runs ``insecure`` (pycurl cannot pin); without one,
the system CAs verify both. Every failure is an :class:`OVirtError` with a clear message.
"""

from __future__ import annotations

import contextlib
import json
import math
import ssl
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import ovirtsdk4

from ..config import normalize_fingerprint
from ..errors import AgentError, TrustError, UnreachableError
from ..http import Client

TIMEOUT = 60.0
TOKEN_PATH = "/ovirt-engine/sso/oauth/token"
LOGOUT_PATH = "/ovirt-engine/services/sso-logout"


class OVirtError(AgentError):
    """An engine or imageio step failed; the message says which and what to do."""


@dataclass
class Engine:
    scheme: str
    host: str
    port: int
    api_path: str

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> Engine:
    text = (text or "").strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or not port:
        raise OVirtError(f"the cloud's endpoint {text!r} is not an oVirt engine address")
    path = parts.path.rstrip("/") or "/ovirt-engine/api"
    return Engine(parts.scheme, parts.hostname, port, path)


@dataclass
class Session:
    connection: ovirtsdk4.Connection
    engine: Engine

    @property
    def system(self):
        return self.connection.system_service()

    @property
    def where(self) -> str:
        return self.engine.where


def translate(exc: BaseException, where: str) -> AgentError:
    if isinstance(exc, OVirtError):
        return exc
    if isinstance(exc, TrustError):
        return OVirtError(
            f"the certificate of the oVirt engine {where} is not the trusted one (check it and "
            f"trust it again in Manage Clouds): {exc}"
        )
    if isinstance(exc, UnreachableError):
        return OVirtError(str(exc))
    if isinstance(exc, AgentError):
        return exc
    if isinstance(exc, ovirtsdk4.AuthError):
        return OVirtError(f"the oVirt engine {where} refused the session: {exc}")
    if isinstance(exc, ovirtsdk4.NotFoundError):
        return OVirtError(f"the oVirt engine {where} has no such object: {exc}")
    if isinstance(exc, ovirtsdk4.ConnectionError | ovirtsdk4.TimeoutError | OSError):
        return OVirtError(f"the oVirt engine {where} cannot be reached: {exc}")
    if isinstance(exc, ovirtsdk4.Error):
        return OVirtError(f"the oVirt engine {where} refused a request: {exc}")
    return OVirtError(f"talking to the oVirt engine {where} failed: {type(exc).__name__}: {exc}")


def _ca_file() -> str | None:
    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.openssl_cafile


@contextlib.contextmanager
def engine_session(cloud: dict, *, timeout: float = TIMEOUT, stop=None):
    engine = parse_endpoint(cloud.get("endpoint") or "")
    where = engine.where
    try:
        pin = normalize_fingerprint(cloud.get("tls_fingerprint") or None)
    except AgentError:
        raise OVirtError(f"the cloud's trusted fingerprint for {where} is malformed") from None
    client = Client(
        engine.base, None, fingerprint=pin, retries=2, connect_timeout=15,
        read_timeout=timeout, stop=stop, auth_label=f"the oVirt engine {where}",
    )  # fmt: skip
    client.server = f"oVirt engine {where}"
    connection = token = None
    try:
        body = urlencode({"grant_type": "password", "scope": "ovirt-app-api",
                          "username": cloud.get("login") or "",
                          "password": cloud.get("password") or ""}).encode()  # fmt: skip
        answer = client.request("POST", TOKEN_PATH, body=body, check=False,
                                content_type="application/x-www-form-urlencoded")  # fmt: skip
        try:
            data = json.loads(answer.body or b"{}")
        except ValueError:
            raise OVirtError(f"{where} did not answer like an oVirt engine's SSO") from None
        token = data.get("access_token")
        if not token:
            raise OVirtError(
                f"the oVirt engine {where} refused the login {cloud.get('login')!r}: "
                f"{data.get('error') or answer.status} (update the credentials in Manage Clouds)"
            )
        connection = ovirtsdk4.Connection(
            url=engine.base + engine.api_path, token=token, insecure=bool(pin),
            ca_file=None if pin or engine.scheme == "http" else _ca_file(),
            timeout=max(1, math.ceil(timeout)),
        )  # fmt: skip
        yield Session(connection, engine)
    except Exception as exc:
        raise translate(exc, where) from None
    finally:
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close(logout=False)
        if token:
            with contextlib.suppress(AgentError):
                body = urlencode({"scope": "ovirt-app-api", "token": token}).encode()
                client.request("POST", LOGOUT_PATH, body=body, check=False,
                               content_type="application/x-www-form-urlencoded")  # fmt: skip
        client.close()
