"""A vCenter (or ESXi) session for one job: connect, log in, find the VM; always log out.

The endpoint and credentials are the cloud's (``GET cloud/``), the same the portal checked in
the wizard. TLS follows the portal's rule: with the cloud's pinned ``tls_fingerprint`` the
certificate must be exactly that one (checked on the first request, before the SOAP login sends
the password) and CA validation is skipped; without a pin the system CAs and the host name are
verified. Every network step has a timeout: pyVmomi's own version probe has none, so the API
version is read here from ``vimServiceVersions.xml`` through the agent's HTTP client (the same
client then reads the datastores, :mod:`.datastore`).

Every failure becomes a :class:`VMwareError` with a message a user can act on: vCenter
unreachable, credentials no longer valid, a certificate that is not the trusted one, the VM gone.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from urllib.parse import urlsplit

from pyVmomi import SoapStubAdapter, vim, vmodl
from pyVmomi.VmomiSupport import GetServiceVersions, versionIdMap

from ..config import normalize_fingerprint
from ..errors import AgentError, TrustError, UnreachableError
from ..http import Client, tls_context

TIMEOUT = 60.0  # seconds for one vSphere call; tasks have their own deadlines


class VMwareError(AgentError):
    """A vCenter step failed; the message names vCenter and what to do."""


@dataclass
class Endpoint:
    host: str
    port: int
    path: str

    @property
    def netloc(self) -> str:
        return self.host if self.port == 443 else f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """``vcenter``, ``vcenter:8443``, ``https://vcenter/sdk`` → host, port, SDK path."""
    text = (text or "").strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    try:
        port = parts.port or 443
    except ValueError:
        port = 0
    if parts.scheme != "https" or not parts.hostname or not port:
        raise VMwareError(f"the cloud's endpoint {text!r} is not a vCenter address")
    path = parts.path.rstrip("/") or "/sdk"
    return Endpoint(parts.hostname, port, path)


@dataclass
class Session:
    """A logged-in session: ``content`` (the ServiceContent), ``http`` (the agent's HTTP
    client to the same server, sending the session cookie) and where it is."""

    content: object
    stub: object
    http: Client
    endpoint: Endpoint

    @property
    def where(self) -> str:
        return self.endpoint.netloc

    @property
    def cookie(self) -> str:
        """``name=value`` of the session cookie (without its attributes), for /folder."""
        return (self.stub.cookie or "").split(";")[0].strip()


def _api_version(client: Client, endpoint: Endpoint) -> str:
    """The newest vim25 version both pyVmomi and the server speak."""
    response = client.request("GET", f"{endpoint.path}/vimServiceVersions.xml", check=False)
    if response.status != 200:
        raise VMwareError(
            f"{endpoint.netloc} does not answer like a vSphere API "
            f"(HTTP {response.status} for {endpoint.path}/vimServiceVersions.xml)"
        )
    try:
        root = ElementTree.fromstring(response.body or b"")
    except ElementTree.ParseError:
        raise VMwareError(f"{endpoint.netloc} sent no vSphere service version list") from None
    offered = set()
    for namespace in root.findall("namespace"):
        if namespace.findtext("name") == "urn:vim25":
            offered.add(namespace.findtext("version"))
            offered.update(v.text for v in namespace.findall("priorVersions/version"))
    for version in GetServiceVersions("vim25"):
        if versionIdMap.get(version) in offered:
            return version
    raise VMwareError(f"{endpoint.netloc} speaks no vSphere API version this agent knows")


def translate(exc: BaseException, where: str, login: str = "") -> AgentError:
    """What pyVmomi or the socket layer raised, as a VMwareError with a clear message."""
    if isinstance(exc, VMwareError):
        return exc
    if isinstance(exc, TrustError):
        return VMwareError(
            f"the certificate of vCenter {where} is not the trusted one (its fingerprint "
            "changed since the cloud was registered; check it and trust it again in "
            f"Manage Clouds): {exc}"
        )
    if isinstance(exc, UnreachableError):
        return VMwareError(str(exc))
    if isinstance(exc, AgentError):
        return exc
    if isinstance(exc, vim.fault.InvalidLogin):
        return VMwareError(
            f"vCenter {where} refused the login {login!r}: the cloud's credentials are no "
            "longer valid (update them in Manage Clouds)"
        )
    if isinstance(exc, vim.fault.NotAuthenticated):
        return VMwareError(f"the session with vCenter {where} ended (logged out or expired)")
    if isinstance(exc, vim.fault.NoPermission):
        privilege = getattr(exc, "privilegeId", None) or "?"
        return VMwareError(f"the user {login!r} lacks the privilege {privilege} on {where}")
    if isinstance(exc, ssl.SSLError):
        return VMwareError(f"TLS with vCenter {where} failed: {exc.reason or exc}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return VMwareError(f"vCenter {where} did not answer in time")
    if isinstance(exc, OSError | http.client.HTTPException):
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return VMwareError(f"vCenter {where} cannot be reached: {reason}")
    if isinstance(exc, vmodl.MethodFault):
        detail = getattr(exc, "msg", None) or type(exc).__name__
        return VMwareError(f"vCenter {where} refused a request: {detail}")
    return VMwareError(f"talking to vCenter {where} failed: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def vcenter(cloud: dict, *, pool_size: int = 8, stop=None, timeout: float = TIMEOUT):
    """A logged-in :class:`Session` to the cloud's vCenter; logs out on exit. Failures in
    the block that come from pyVmomi or the network are translated (:func:`translate`)."""
    endpoint = parse_endpoint(cloud.get("endpoint") or "")
    where, login = endpoint.netloc, cloud.get("login") or ""
    try:
        pin = normalize_fingerprint(cloud.get("tls_fingerprint") or None)
    except AgentError:
        raise VMwareError(f"the cloud's trusted fingerprint for {where} is malformed") from None
    client = Client(
        f"https://{endpoint.host}:{endpoint.port}",
        None,
        fingerprint=pin,
        retries=4,  # a datastore read that fails is tried 5 times (backoff up to ~8 s)
        connect_timeout=min(timeout, 15.0),
        read_timeout=timeout,
        pool_size=pool_size,
        stop=stop,
        auth_label=f"the session with vCenter {where}",
    )
    client.server = f"vCenter {where}"
    # With a pin, checked on the version probe's connection, the SOAP stub follows it.
    context = tls_context(pinned=bool(pin))
    stub = content = None
    logged_in = False
    try:
        version = _api_version(client, endpoint)
        stub = SoapStubAdapter(
            host=endpoint.host,
            port=endpoint.port,
            path=endpoint.path,
            version=version,
            sslContext=context,
            httpConnectionTimeout=timeout,
            connectionPoolTimeout=max(1, int(timeout)),
        )
        content = vim.ServiceInstance("ServiceInstance", stub).RetrieveContent()
        content.sessionManager.Login(login, cloud.get("password") or "", None)
        logged_in = True
        current = Session(content=content, stub=stub, http=client, endpoint=endpoint)
        client.headers["Cookie"] = current.cookie
        yield current
    except Exception as exc:
        raise translate(exc, where, login) from None
    finally:
        if logged_in:
            with contextlib.suppress(Exception):
                content.sessionManager.Logout()
        if stub is not None:
            stub.DropConnections()
        client.close()


def find_vm(session: Session, external_id: str, name: str):
    """The VM of a machine: by instance UUID (what the portal stores), else by managed object
    id; a VM that no longer exists is a clear error."""
    content = session.content
    vm = None
    if external_id and "-" in external_id and not external_id.startswith("vm-"):
        vm = content.searchIndex.FindByUuid(None, external_id, True, True)
    if vm is None and external_id:
        candidate = vim.VirtualMachine(external_id, session.stub)
        try:
            candidate.name  # noqa: B018 - raises ManagedObjectNotFound when it is gone
            vm = candidate
        except vmodl.fault.ManagedObjectNotFound:
            vm = None
    if vm is None:
        raise VMwareError(
            f"VM {name!r} ({external_id}) is not in vCenter {session.where} any more: it was "
            "removed, or moved out of what this appliance's user may see"
        )
    return vm
