"""The agent's HTTP client: a small keep-alive connection pool to the portal's agent API.

Built on the standard library's ``http.client`` (keep-alive, Content-Length bodies sent piece
by piece): the CLI starts in well under 0.1 s, where urllib3's import alone took ~50 ms more
on every ``replicate``. The pool hands each request an idle connection (one whose socket the
server has not closed meanwhile) or a new one. TLS: with a pinned ``server_fingerprint`` (the
SHA-256 of the server certificate's DER) CA verification is off — the pin is stronger than any
CA — and the certificate is compared right after the handshake, before a byte of the request
leaves; without a pin the system CAs and the host name are verified. Retries are ours, so
every failure ends as one clear :class:`AgentError`: connection errors and 429/502/503/504
are retried with exponential backoff and full jitter (a restarting server must not be
hammered by every agent at the same instant), then become "cannot reach server"; a request
on a pooled connection that the server closed as it went out (its keep-alive timeout) is
sent again at once on a new one, costing no attempt; 401 is "credential rejected: <the
server's message>".
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import random
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlencode, urlsplit

from . import __version__
from .errors import (
    AgentError,
    AuthError,
    Cancelled,
    ServerError,
    TrustError,
    UnreachableError,
    UsageError,
)

log = logging.getLogger("agent.http")

API_PREFIX = "/api/v1/agent/"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# How a request on a keep-alive connection the server has just closed fails.
STALE_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

Body = bytes | Callable[[], Iterable[bytes]] | None


class Response:
    """A finished (or, with ``stream=True``, an open) answer."""

    def __init__(self, raw: http.client.HTTPResponse, body: bytes | None, release=None):
        self.raw = raw
        self.status = raw.status
        self.headers = raw.headers  # case-insensitive .get()
        self.body = body
        self._release = release

    def json(self):
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ServerError(self.status, "the answer is not JSON") from None

    def read(self, amount: int) -> bytes:
        return self.raw.read(amount)

    def close(self) -> None:
        """Back to the pool when the answer was read to its end; a connection with unread
        bytes is closed (draining a large range would cost more than a new connection)."""
        release, self._release = self._release, None
        if release is not None:
            release(self.raw.isclosed())


class _Connection(http.client.HTTPConnection):
    """A connection with separate connect and read timeouts."""

    read_timeout: float = 300.0

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.read_timeout)


class _TLSConnection(http.client.HTTPSConnection):
    """HTTPS with separate timeouts and, when ``pin`` is set, the certificate pinned."""

    read_timeout: float = 300.0
    pin: str | None = None
    server: str = ""

    def connect(self) -> None:
        super().connect()
        if self.pin:
            der = self.sock.getpeercert(binary_form=True) or b""
            got = hashlib.sha256(der).hexdigest()
            if got != self.pin:
                self.close()
                raise TrustError(
                    f"the TLS certificate of {self.server} does not match the pinned "
                    f"server_fingerprint (it has {got}); refusing to talk to it"
                )
        self.sock.settimeout(self.read_timeout)


def tls_context(*, pinned: bool) -> ssl.SSLContext:
    """The client context: the system CAs and host name checked, or — with a pinned
    certificate, compared after the handshake — neither, and then the CA bundle is not even
    loaded (that alone costs ~30 ms, on every CLI call and every appliance job)."""
    if not pinned:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True when an idle connection's socket is readable: the server closed it (or sent
    something unasked), so it must not carry the next request."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def error_message(status: int, body: bytes | None) -> tuple[str, dict]:
    """The message and details of the project's error body (or a DRF default, or text)."""
    text = (body or b"").decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            details = error.get("details")
            details = details if isinstance(details, dict) else {}
            return _with_fields(str(error["message"]), details), details
        if data.get("detail"):
            return str(data["detail"]), {}
        return json.dumps(data)[:500], {}
    return (text.strip()[:500] or f"HTTP {status}"), {}


def _with_fields(message: str, details: dict) -> str:
    """A validation error's field messages appended ("Invalid input. disk: No disk with this
    key on the machine."): the generic message alone tells the user nothing."""
    fields = []
    for name, value in details.items():
        if name == "code" or not isinstance(value, list | str):
            continue
        text = " ".join(str(v) for v in value) if isinstance(value, list) else value
        fields.append(f"{name}: {text}")
    if not fields or not message.startswith("Invalid input"):
        return message
    return f"{message} {'; '.join(fields)}"[:1000]


def _close(payload) -> None:
    """Finish an unsent streamed body now: its generator may hold the throttle's wire lock,
    and a retry's new body must not wait for the garbage collector to release it."""
    close = getattr(payload, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


def _reason(exc: BaseException) -> str:
    """The root cause of a connection failure in a few words ("Connection refused")."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


class Client:
    """Calls to ``<server>/api/v1/agent/…`` with a Bearer credential.

    Thread-safe: the pipeline's threads share it (the pool hands each request its own
    connection). ``sent`` counts request body bytes (what crossed the wire towards the server).
    ``stop`` (an Event) interrupts backoff waits (raising :class:`Cancelled`): an agent told to
    stop does not sleep out its retries. Requests themselves are still sent after a stop, so
    the clean-up calls (abort the session, report the job) go out.
    """

    def __init__(
        self,
        server: str,
        credential: str | None = None,
        *,
        fingerprint: str | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        backoff_max: float = 15.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        pool_size: int = 8,
        stop: threading.Event | None = None,
        auth_label: str = "credential",
    ):
        parts = urlsplit(server or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"the server must be an http:// or https:// URL, not {server!r}")
        self.server = server.rstrip("/")
        self.prefix = parts.path.rstrip("/") + API_PREFIX
        self.retries = retries
        self.backoff, self.backoff_max = backoff, backoff_max
        self.stop = stop
        self.auth_label = auth_label
        self.headers = {"User-Agent": f"acura-agent/{__version__}", "Accept": "application/json"}
        if credential:
            self.headers["Authorization"] = f"Bearer {credential}"
        self.host, self.port = parts.hostname, parts.port
        self.tls = parts.scheme == "https"
        self.fingerprint = fingerprint
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.pool_size = max(1, pool_size)
        self._context = None
        if self.tls:
            self._context = tls_context(pinned=bool(fingerprint))
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.sent = 0

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- the pool --------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if not _dropped(conn):
                return conn
            conn.close()
        if self.tls:
            conn = _TLSConnection(
                self.host, self.port, timeout=self.connect_timeout, context=self._context
            )
            conn.pin, conn.server = self.fingerprint, self.server
        else:
            conn = _Connection(self.host, self.port, timeout=self.connect_timeout)
        conn.read_timeout = self.read_timeout
        return conn

    def _put_back(self, conn: http.client.HTTPConnection, reusable: bool = True) -> None:
        if reusable and conn.sock is not None:
            with self._lock:
                if len(self._idle) < self.pool_size:
                    self._idle.append(conn)
                    return
        conn.close()

    # -- requests ------------------------------------------------------------------------

    def url(self, path: str, params: dict | None = None) -> str:
        url = path if path.startswith("/") else self.prefix + path
        if params:
            url += "?" + urlencode(params)
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body=None,
        body: Body = None,
        length: int | None = None,
        content_type: str = "application/octet-stream",
        params: dict | None = None,
        headers: dict | None = None,
        stream: bool = False,
        check: bool = True,
    ) -> Response:
        """One call, retried on connection errors and 429/502/503/504.

        ``body`` is bytes, or a factory returning an iterable of bytes (then ``length`` is
        required: the server insists on a Content-Length) so a throttled body can be sent
        again on a retry. ``check``: raise :class:`ServerError`/:class:`AuthError` for 4xx/5xx.
        """
        url = self.url(path, params)
        head = dict(self.headers)
        if headers:
            head.update(headers)
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            content_type = "application/json"
        if body is not None:
            head["Content-Type"] = content_type
            if callable(body):
                if length is None:
                    raise ValueError("a streamed body needs its length")
                head["Content-Length"] = str(length)
            else:
                length = len(body)
        if body is not None:
            head["Content-Length"] = str(length or 0)
        attempt = 0
        started = time.monotonic()
        stale_retried = False
        while True:
            payload = body() if callable(body) else body
            conn = self._connection()
            reused = conn.sock is not None  # from the pool: the server may have closed it
            try:
                conn.request(method, url, body=payload, headers=head)
                if length:  # the body went out (counted again when a retry resends it)
                    with self._lock:
                        self.sent += length
                raw = conn.getresponse()
                if raw.status in RETRY_STATUSES and attempt < self.retries:
                    retry_after = raw.headers.get("Retry-After")
                    raw.read()
                    self._put_back(conn, not raw.will_close)
                    self._sleep(attempt, retry_after)
                    attempt += 1
                    continue
                data = None if stream and raw.status < 300 else raw.read()
            except AgentError:  # the pinned certificate did not match: nothing was sent
                _close(payload)
                conn.close()
                raise
            except (OSError, http.client.HTTPException) as exc:
                _close(payload)
                conn.close()
                if isinstance(exc, ssl.SSLError):
                    raise self._tls_error(exc) from None
                if reused and not stale_retried and isinstance(exc, STALE_ERRORS):
                    # The server closed the idle keep-alive connection as we reused it (its
                    # keep-alive timeout): not an outage, so no backoff and no attempt used.
                    stale_retried = True
                    continue
                failure: BaseException = exc
            except BaseException:
                _close(payload)
                conn.close()
                raise
            else:
                break
            if attempt >= self.retries:
                tries = f" (tried {attempt + 1} times)" if attempt else ""
                raise UnreachableError(
                    f"cannot reach server {self.server}: {_reason(failure)}{tries}"
                ) from None
            self._sleep(attempt, None)
            attempt += 1
        log.debug(
            "%s %s -> %s (%d bytes sent, %.3f s)",
            method, url, raw.status, length or 0, time.monotonic() - started,
        )  # fmt: skip
        if data is None:

            def release(complete: bool, conn=conn, raw=raw) -> None:
                self._put_back(conn, complete and not raw.will_close)

            return Response(raw, None, release)
        self._put_back(conn, not raw.will_close)
        response = Response(raw, data)
        if check and response.status >= 400:
            raise self._error(method, path, response)
        return response

    def json(self, method: str, path: str, payload=None, **kwargs):
        """A JSON call; the decoded answer (None for 204)."""
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = {}
        return self.request(method, path, json_body=payload, **kwargs).json()

    # -- helpers -------------------------------------------------------------------------

    def _error(self, method: str, path: str, response: Response) -> Exception:
        message, details = error_message(response.status, response.body)
        if response.status == 401:
            return AuthError(f"{self.auth_label} rejected: {message}")
        return ServerError(response.status, message, details, where=f"{method} {path}")

    def _tls_error(self, exc: BaseException) -> Exception:
        return TrustError(f"TLS with {self.server} failed: {_reason(exc)}")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.backoff_max, self.backoff * (2**attempt))
        delay = random.uniform(delay / 2, delay)  # jitter: agents must not retry in lockstep
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), self.backoff_max * 4))
        if self.stop is not None:
            if self.stop.wait(delay):
                raise Cancelled("stopped")
        else:
            time.sleep(delay)


def client_from_config(config, *, stop: threading.Event | None = None, pool_size: int = 8):
    """An authenticated client for an enrolled config."""
    config.require_enrolled()
    return Client(
        config.server,
        config.credential,
        fingerprint=config.fingerprint,
        retries=config.get("retries"),
        pool_size=pool_size,
        stop=stop,
    )
