"""VMware vSphere connector (pyvmomi): check credentials and privileges, discover the inventory.

``check`` is what the wizard's "correctness check" and *Manage Clouds → Test connection* run:
connect, log in, check the privileges the product description lists for the VMware agent, and
discover. ``discover`` is the same without the privilege check.

The endpoint is what a customer types (``vcenter.dts.loc``, ``vcenter:8443``,
``https://vcenter/sdk``); see :mod:`.endpoint`. An endpoint that cannot be parsed fails with
kind ``api`` before any traffic. TLS follows :mod:`.tls`: the system CAs without a pin, exactly
the pinned certificate with one. Every network step has ``timeout``; the session is always
logged out and its connections dropped. The password is sent only in the SOAP Login call and
never appears in an error or log.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from pyVmomi import SoapStubAdapter, vim, vmodl
from pyVmomi.VmomiSupport import GetServiceVersions, versionIdMap

from . import CheckResult, ConnectorError, Inventory
from . import tls as tlslib
from .endpoint import Endpoint, parse_endpoint
from .vmware_inventory import collect

EXAMPLE = "vcenter.example.com, vcenter.example.com:8443 or https://vcenter.example.com/sdk"

# The product description, "VMware Agent → Requirements" (role "VMware Consolidated Backup
# user" plus the CBT privilege); labels as the vSphere Client shows them.
REQUIRED_PRIVILEGES = {
    "VirtualMachine.Config.DiskLease": "Virtual machine > Configuration > Disk lease",
    "VirtualMachine.Interact.PowerOn": "Virtual machine > Interaction > Power on",
    "VirtualMachine.Interact.PowerOff": "Virtual machine > Interaction > Power off",
    "VirtualMachine.Provisioning.DiskRandomRead": (
        "Virtual machine > Provisioning > Allow read-only disk access"
    ),
    "VirtualMachine.Provisioning.PutVmFiles": (
        "Virtual machine > Provisioning > Allow virtual machine files upload"
    ),
    "VirtualMachine.State.CreateSnapshot": (
        "Virtual machine > Snapshot management > Create snapshot"
    ),
    "VirtualMachine.State.RemoveSnapshot": (
        "Virtual machine > Snapshot management > Remove snapshot"
    ),
    "VirtualMachine.Config.ChangeTracking": (
        "Virtual machine > Configuration > Disk change tracking"
    ),
}
RECOMMENDED_PRIVILEGES = {
    "Global.DisableMethods": "Global > Disable methods",
    "Global.EnableMethods": "Global > Enable methods",
    "Global.Licenses": "Global > Licenses",
}


def privilege_name(privilege_id: str) -> str:
    label = REQUIRED_PRIVILEGES.get(privilege_id) or RECOMMENDED_PRIVILEGES.get(privilege_id)
    return f"{privilege_id} ({label})" if label else privilege_id


def evaluate_privileges(
    granted: dict[str, set[str]], root: str, datacenters: list[str]
) -> tuple[list[str], list[str]]:
    """``(missing required, missing recommended)`` privilege ids.

    ``granted`` maps an entity id to the privileges the session user holds there. A privilege
    counts when it is granted on the root folder, or on every datacenter (admins often assign
    the backup role per datacenter; each datacenter's VMs inherit it).
    """

    def has(privilege: str) -> bool:
        if privilege in granted.get(root, set()):
            return True
        return bool(datacenters) and all(privilege in granted.get(dc, set()) for dc in datacenters)

    return (
        [p for p in REQUIRED_PRIVILEGES if not has(p)],
        [p for p in RECOMMENDED_PRIVILEGES if not has(p)],
    )


@dataclass
class Session:
    content: object
    endpoint: Endpoint
    fingerprint: str | None
    login: str

    @property
    def where(self) -> str:
        return self.endpoint.netloc


def _not_vsphere(where: str, detail: str) -> ConnectorError:
    return ConnectorError(
        "api",
        f"{where} does not answer like a vSphere API ({detail}). Enter the vCenter or ESXi "
        f"host name, for example {EXAMPLE}.",
    )


def _api_version(endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> str:
    """The newest vim25 version both pyvmomi and the server speak (SmartConnect's way, but
    with a timeout: pyvmomi's own version probe has none and could hang forever)."""
    where = endpoint.netloc
    conn = http.client.HTTPSConnection(
        endpoint.host, endpoint.port, timeout=timeout, context=context
    )
    try:
        conn.request("GET", endpoint.path + "/vimServiceVersions.xml")
        response = conn.getresponse()
        body = response.read(1 << 20)
    finally:
        conn.close()
    if response.status != 200:
        raise _not_vsphere(where, f"HTTP {response.status} for {endpoint.path}")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise _not_vsphere(where, "no service version list") from None
    offered = set()
    for namespace in root.findall("namespace"):
        if namespace.findtext("name") == "urn:vim25":
            offered.add(namespace.findtext("version"))
            offered.update(v.text for v in namespace.findall("priorVersions/version"))
    for version in GetServiceVersions("vim25"):
        if versionIdMap.get(version) in offered:
            return version
    raise _not_vsphere(where, "no vSphere API version this portal speaks")


def _translate(exc: BaseException, where: str, login: str) -> ConnectorError:
    """Map whatever pyvmomi or the socket layer raised to a ConnectorError."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, vim.fault.InvalidLogin):
        return ConnectorError(
            "auth", f"The user '{login}' was refused by {where}: wrong login or password."
        )
    if isinstance(exc, vim.fault.NoPermission):
        privilege = getattr(exc, "privilegeId", None) or "?"
        return ConnectorError(
            "privileges",
            f"The user '{login}' lacks the privilege {privilege_name(privilege)} on {where}.",
            missing=[privilege_name(privilege)],
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectorError("tls", f"The certificate of {where} is not the trusted one.")
    if isinstance(exc, ssl.SSLError):
        return ConnectorError("tls", f"TLS with {where} failed: {exc.reason or exc}.")
    if isinstance(exc, http.client.HTTPException) and not isinstance(exc, OSError):
        return _not_vsphere(where, str(exc) or type(exc).__name__)
    network = tlslib.network_error(exc, where)
    if network is not None:
        return network
    if isinstance(exc, vmodl.MethodFault):
        detail = getattr(exc, "msg", None) or type(exc).__name__
        return ConnectorError("api", f"{where} refused a request: {detail}")
    return ConnectorError("api", f"Talking to {where} failed: {type(exc).__name__}.")


@contextlib.contextmanager
def session(
    endpoint: str, login: str, password: str, *, tls_fingerprint: str | None, timeout: float
):
    """A logged-in :class:`Session`; logs out and drops connections on exit.

    Every failure inside the block (discovery too) comes out as a ConnectorError.
    """
    parsed = parse_endpoint(endpoint, default_path="/sdk", example=EXAMPLE)
    where = parsed.netloc
    fingerprint = tlslib.probe(parsed.host, parsed.port, timeout=timeout, pin=tls_fingerprint)
    context = tlslib.pinned_context(fingerprint) if tls_fingerprint else tlslib.verifying_context()
    stub = None
    content = None
    logged_in = False
    try:
        version = _api_version(parsed, context, timeout)
        stub = SoapStubAdapter(
            host=parsed.host,
            port=parsed.port,
            path=parsed.path,
            version=version,
            sslContext=context,
            httpConnectionTimeout=timeout,
            connectionPoolTimeout=max(1, int(timeout)),
        )
        content = vim.ServiceInstance("ServiceInstance", stub).RetrieveContent()
        content.sessionManager.Login(login, password, None)
        logged_in = True
        yield Session(content=content, endpoint=parsed, fingerprint=fingerprint, login=login)
    except Exception as exc:
        raise _translate(exc, where, login) from None
    finally:
        if logged_in:
            with contextlib.suppress(Exception):
                content.sessionManager.Logout()
        if stub is not None:
            stub.DropConnections()


def missing_privileges(current: Session, inventory: Inventory) -> tuple[list[str], list[str]]:
    """Ask vCenter which of the listed privileges the session user holds (one call).

    Raises vmodl faults when the server cannot answer (old ESXi): the caller turns that into a
    warning rather than refusing a platform it cannot judge.
    """
    content = current.content
    manager = content.authorizationManager
    session_key = content.sessionManager.currentSession.key
    root = content.rootFolder
    stub = root._stub
    datacenters = [vim.Datacenter(dc.id, stub) for dc in inventory.datacenters]
    privileges = [*REQUIRED_PRIVILEGES, *RECOMMENDED_PRIVILEGES]
    answer = manager.HasPrivilegeOnEntities(
        entity=[root, *datacenters], sessionId=session_key, privId=privileges
    )
    granted = {
        item.entity._moId: {a.privId for a in item.privAvailability or [] if a.isGranted}
        for item in answer or []
    }
    return evaluate_privileges(granted, root._moId, [dc._moId for dc in datacenters])


def _inventory_warnings(inventory: Inventory) -> list[str]:
    if not inventory.vms():
        return [
            "No virtual machines were found: check that the user may see them "
            "(at least read-only access to the inventory)."
        ]
    return []


def check(
    endpoint: str,
    login: str,
    password: str,
    *,
    cluster_level: bool,
    tls_fingerprint: str | None = None,
    timeout: float = 15,
) -> CheckResult:
    """Connect, log in, check privileges and discover; raises ConnectorError.

    Missing required privileges raise kind ``privileges`` naming each one; missing recommended
    ones become warnings.
    """
    with session(
        endpoint, login, password, tls_fingerprint=tls_fingerprint, timeout=timeout
    ) as current:
        inventory = collect(current.content, cluster_level=cluster_level)
        warnings = []
        try:
            required, recommended = missing_privileges(current, inventory)
        except (vmodl.fault.MethodNotFound, vmodl.fault.NotSupported, vim.fault.NoPermission):
            required, recommended = [], []
            warnings.append(
                f"{current.where} could not report the user's privileges; make sure the user "
                "has the role the VMware agent requirements list."
            )
        if required:
            names = [privilege_name(p) for p in required]
            raise ConnectorError(
                "privileges",
                f"The user '{login}' lacks required privileges on {current.where}: "
                + "; ".join(names)
                + ".",
                missing=names,
            )
        warnings += [f"Recommended privilege missing: {privilege_name(p)}." for p in recommended]
        warnings += _inventory_warnings(inventory)
        return CheckResult(
            product=current.content.about.fullName,
            fingerprint=current.fingerprint,
            warnings=warnings,
            inventory=inventory,
        )


def discover(
    endpoint: str,
    login: str,
    password: str,
    *,
    cluster_level: bool,
    tls_fingerprint: str | None = None,
    timeout: float = 15,
) -> Inventory:
    """Connect, log in and return the inventory (no privilege check); raises ConnectorError."""
    with session(
        endpoint, login, password, tls_fingerprint=tls_fingerprint, timeout=timeout
    ) as current:
        return collect(current.content, cluster_level=cluster_level)
