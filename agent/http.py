"""The agent's HTTP client: one keep-alive connection pool to the portal's agent API.

urllib3 gives connection reuse across the pipeline's threads and certificate pinning
(``assert_fingerprint``: the SHA-256 of the server certificate's DER, checked on every new
connection, with CA verification off because the pin is stronger than any CA). Retries are
ours, not urllib3's, so every failure ends as one clear :class:`AgentError`:
connection errors and 429/502/503/504 are retried with exponential backoff and full jitter
(a restarting server must not be hammered by every agent at the same instant), then become
"cannot reach server"; 401 is "credential rejected: <the server's message>".
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, SSLError

from . import __version__
from .errors import AuthError, Cancelled, ServerError, TrustError, UnreachableError, UsageError

log = logging.getLogger("agent.http")

API_PREFIX = "/api/v1/agent/"
RETRY_STATUSES = frozenset({429, 502, 503, 504})

Body = bytes | Callable[[], Iterable[bytes]] | None


class Response:
    """A finished (or, with ``stream=True``, an open) answer."""

    def __init__(self, raw: urllib3.BaseHTTPResponse, body: bytes | None):
        self.raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self.body = body

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
        with contextlib.suppress(Exception):  # a broken stream is simply dropped
            self.raw.drain_conn()
        self.raw.release_conn()


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
    text = str(exc)
    return text.split(": ", 1)[-1] if "Failed to establish" in text else text


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
        tls: dict = {}
        if parts.scheme == "https":
            if fingerprint:
                tls = {"cert_reqs": "CERT_NONE", "assert_fingerprint": fingerprint}
            else:
                tls = {"cert_reqs": "CERT_REQUIRED"}
        self.pool = urllib3.connection_from_url(
            self.server,
            maxsize=max(1, pool_size),
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            **tls,
        )
        self._lock = threading.Lock()
        self.sent = 0

    def close(self) -> None:
        self.pool.close()

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
        attempt = 0
        started = time.monotonic()
        while True:
            payload = body() if callable(body) else body
            try:
                raw = self.pool.urlopen(
                    method,
                    url,
                    body=payload,
                    headers=head,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    assert_same_host=False,
                )
                if length:  # the body went out (counted again when a retry resends it)
                    with self._lock:
                        self.sent += length
                if raw.status in RETRY_STATUSES and attempt < self.retries:
                    retry_after = raw.headers.get("Retry-After")
                    self._release(raw)
                    self._sleep(attempt, retry_after)
                    attempt += 1
                    continue
                data = None if stream and raw.status < 300 else raw.read()
            except (SSLError, MaxRetryError) as exc:
                _close(payload)
                if isinstance(exc, SSLError) or isinstance(exc.reason, SSLError):
                    raise self._tls_error(exc) from None
                failure: BaseException = exc
            except (Urllib3Error, OSError) as exc:
                _close(payload)
                failure = exc
            except BaseException:
                _close(payload)
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
            return Response(raw, None)
        raw.release_conn()
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

    def _tls_error(self, exc: SSLError) -> Exception:
        text = str(exc)
        if "Fingerprints did not match" in text:
            got = text.rsplit('got "', 1)[-1].rstrip('")')
            return TrustError(
                f"the TLS certificate of {self.server} does not match the pinned "
                f"server_fingerprint (it has {got}); refusing to talk to it"
            )
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

    @staticmethod
    def _release(raw) -> None:
        with contextlib.suppress(Exception):  # the connection is dropped either way
            raw.drain_conn()
        raw.release_conn()


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
