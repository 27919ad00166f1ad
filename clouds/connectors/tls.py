"""Server certificates: fetch, fingerprint, verify against the system CAs or a pin.

The policy both connectors share: without a pinned fingerprint the certificate must be
trusted by the system's CA bundle; an untrusted one fails with its SHA-256 fingerprint so the
UI can offer "Trust this certificate". With a pin (what the customer trusted earlier) the
certificate must be exactly that one, and CA validation is skipped: vCenters and oVirt
engines mostly run on self-signed or private-CA certificates.

:func:`probe` does its own TLS handshake before the SDK runs, so unreachable, timeout and TLS
failures get the same clear messages whatever library comes next.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import re
import socket
import ssl

from . import ConnectorError


def fingerprint_of(der: bytes) -> str:
    """SHA-256 of a DER certificate in the "AB:CD:..." form browsers and vCenter show."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalize_fingerprint(text: str) -> str:
    """Accept "ab:cd…", "ABCD…" or "sha256:…"; return the "AB:CD:..." form.

    Raises ConnectorError(kind="tls") when it is not a SHA-256 fingerprint.
    """
    hexdigits = re.sub(r"[\s:]", "", re.sub(r"^sha-?256[:=]?", "", text.strip(), flags=re.I))
    if not re.fullmatch(r"[0-9A-Fa-f]{64}", hexdigits):
        raise ConnectorError(
            "tls", "The trusted certificate fingerprint is not a SHA-256 fingerprint."
        )
    hexdigits = hexdigits.upper()
    return ":".join(hexdigits[i : i + 2] for i in range(0, 64, 2))


def network_error(exc: BaseException, where: str) -> ConnectorError | None:
    """The ConnectorError for a socket-level failure while talking to ``where``, or None."""
    if isinstance(exc, TimeoutError):
        return ConnectorError("timeout", f"{where} did not answer in time.")
    if isinstance(exc, socket.gaierror):
        return ConnectorError("unreachable", f"Cannot reach {where}: the host name is unknown.")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectorError("unreachable", f"Cannot reach {where}: connection refused.")
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError):
        return ConnectorError(
            "unreachable", f"Cannot reach {where}: the server closed the connection."
        )
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return ConnectorError("unreachable", f"Cannot reach {where}: no route to the host.")
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return ConnectorError("unreachable", f"Cannot reach {where}: {reason}.")
    return None


def untrusted(where: str, fingerprint: str, reason: str) -> ConnectorError:
    return ConnectorError(
        "tls",
        f"The certificate of {where} is not trusted ({reason}). If it is the one you expect, "
        f"trust it: SHA-256 {fingerprint}.",
        fingerprint=fingerprint,
    )


def changed(where: str, fingerprint: str) -> ConnectorError:
    return ConnectorError(
        "tls",
        f"The certificate of {where} has changed since it was trusted: it is now SHA-256 "
        f"{fingerprint}. Trust the new certificate only if you know why it changed.",
        fingerprint=fingerprint,
    )


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def verifying_context() -> ssl.SSLContext:
    """The system CA bundle with host name checks: the policy when nothing is pinned."""
    return ssl.create_default_context()


class PinnedContext(ssl.SSLContext):
    """Accepts exactly the certificate with fingerprint ``pin``, on every connection.

    CA and host name checks are off (the pin is stronger); the check runs right after each
    handshake, so a library that opens several connections cannot slip past it.
    """

    pin: str = ""

    def wrap_socket(self, *args, **kwargs):
        wrapped = super().wrap_socket(*args, **kwargs)
        der = wrapped.getpeercert(binary_form=True)
        if der is None or fingerprint_of(der) != self.pin:
            wrapped.close()
            raise ssl.SSLCertVerificationError("the certificate does not match the pinned one")
        return wrapped


def pinned_context(pin: str) -> PinnedContext:
    context = PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.pin = normalize_fingerprint(pin)
    return context


def _handshake(host: str, port: int, context: ssl.SSLContext, timeout: float, where: str):
    """Connect and shake hands; returns the TLS socket (caller closes it)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise network_error(exc, where) from None
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError:
        sock.close()
        raise
    except ssl.SSLError as exc:
        sock.close()
        raise ConnectorError(
            "tls",
            f"{where} did not complete a TLS handshake ({exc.reason or exc}); "
            "is this the HTTPS port?",
        ) from None
    except OSError as exc:
        sock.close()
        raise (
            network_error(exc, where) or ConnectorError("tls", f"TLS with {where} failed.")
        ) from None


def probe(host: str, port: int, *, timeout: float, pin: str | None = None) -> str:
    """Check the server's certificate per the policy above; returns its fingerprint.

    Raises ConnectorError: ``unreachable`` / ``timeout`` when no TLS session comes up,
    ``tls`` when the certificate is untrusted (no pin) or not the pinned one.
    """
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    expected = normalize_fingerprint(pin) if pin else None
    with _handshake(host, port, _unverified_context(), timeout, where) as tls_sock:
        fingerprint = fingerprint_of(tls_sock.getpeercert(binary_form=True))
    if expected:
        if fingerprint != expected:
            raise changed(where, fingerprint)
        return fingerprint
    try:
        with _handshake(host, port, verifying_context(), timeout, where):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise untrusted(where, fingerprint, exc.verify_message or "verification failed") from None
    return fingerprint
