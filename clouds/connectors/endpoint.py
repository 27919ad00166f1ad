"""Parse the endpoint a customer types into scheme, host, port and path.

Customers type ``vcenter.dts.loc``, ``vcenter:8443``, ``https://vcenter/sdk``,
``https://zvirtnode/ovirt-engine/api`` or a bare IPv6 address; all of these must work, and
anything else must fail with a sentence that says what is wrong (kind ``api``: the endpoint
is not something an API can answer at), before any network traffic.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from . import ConnectorError

# RFC 1123 labels plus "_", which some internal DNS zones use.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?)+$")


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str  # without brackets, also for IPv6
    port: int
    path: str  # no trailing slash, "" only for a bare origin

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"


def _invalid(text: str, reason: str, example: str) -> ConnectorError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return ConnectorError(
        "api", f"'{shown}' is not a valid endpoint: {reason}. Enter for example {example}."
    )


def parse_endpoint(
    text: str,
    *,
    default_path: str,
    example: str,
    schemes: tuple[str, ...] = ("https",),
) -> Endpoint:
    """Parse ``text``; an empty or "/" path becomes ``default_path``.

    Raises ConnectorError(kind="api") naming what is wrong; ``example`` shows the customer a
    valid endpoint in that message.
    """
    raw = (text or "").strip()
    if not raw:
        raise _invalid(raw, "it is empty", example)
    if any(ch.isspace() for ch in raw):
        raise _invalid(raw, "it contains spaces", example)
    candidate = raw
    with contextlib.suppress(ValueError):  # a bare IPv6 address's colons would read as a port
        candidate = f"[{ipaddress.IPv6Address(raw)}]"
    if "://" not in candidate:
        candidate = f"{schemes[0]}://{candidate}"
    try:
        parts = urllib.parse.urlsplit(candidate)
        port = parts.port
    except ValueError as exc:
        reason = (
            "the port is not a number from 1 to 65535" if "port" in str(exc).lower() else str(exc)
        )
        raise _invalid(raw, reason, example) from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise _invalid(raw, f"it must start with {allowed} (or with the host name)", example)
    if parts.username is not None or parts.password is not None:
        # Never echo what came before "@": it may be a password.
        raise ConnectorError(
            "api",
            "The endpoint must not contain a user name or password; "
            f"enter them in their own fields. Enter for example {example}.",
        )
    if parts.query or parts.fragment:
        raise _invalid(raw, "it must not contain '?' or '#'", example)
    host = parts.hostname or ""
    if not host:
        raise _invalid(raw, "the host name is missing", example)
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if not _HOSTNAME.match(host):
            raise _invalid(raw, f"'{host}' is not a host name or IP address", example) from None
    if port == 0:
        raise _invalid(raw, "the port is not a number from 1 to 65535", example)
    if port is None:
        port = 443 if scheme == "https" else 80
    path = parts.path.rstrip("/")
    if not path:
        path = default_path
    return Endpoint(scheme=scheme, host=host, port=port, path=path)
