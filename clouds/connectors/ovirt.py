"""oVirt / zVirt connector (ovirtsdk4): check credentials, discover at the chosen level.

The endpoint is what a customer types: ``https://zvirtnode/ovirt-engine/api`` as the product
description shows, or just ``zvirtnode`` (the API path is then ``/ovirt-engine/api``). TLS
follows :mod:`.tls`: our own handshake first (so the error carries the certificate's
fingerprint), then the SDK with the system CA bundle, or ``insecure=True`` once the pinned
fingerprint matched (ovirtsdk4/pycurl cannot pin a certificate itself). Every SDK call has a
timeout (the SDK's default waits forever); the SSO login and logout are done by
:mod:`.ovirt_sso` because the SDK's own SSO requests ignore that timeout, so the SDK only ever
sees the token, never the password. The connection is always closed and its token revoked.
The SDK's exceptions are mapped as ``/work/shared/docs/ovirt-api.md`` records them (plus the
"Failed to read response" form a timed-out API request takes, which that document lacks).

Discovery reads datacenters, clusters, hosts, networks, VMs and disks in one request each,
plus one disk-attachment list per VM (the API has no bulk form for those).
"""

from __future__ import annotations

import contextlib
import math
import re
import ssl

import ovirtsdk4

from . import CheckResult, Cluster, ConnectorError, Datacenter, Disk, Host, Inventory, Scope, Vm
from . import tls as tlslib
from .endpoint import Endpoint, parse_endpoint
from .ovirt_sso import sso_logout, sso_token

API_PATH = "/ovirt-engine/api"
EXAMPLE = "https://engine.example.com/ovirt-engine/api"
LEVELS = ("cluster", "host", "datacenter", "cloud")

# libcurl error codes. The SDK reports them as "Error while sending HTTP request: (N, '...')"
# (ConnectionError/TimeoutError for some) or, for a request that fails inside its multi handle
# (a timed-out API GET, for one), as a plain Error "Failed to read response: [(<Curl>, N, ...)]".
CURL_COULDNT_RESOLVE_HOST, CURL_COULDNT_CONNECT, CURL_TIMEOUT = 6, 7, 28
CURL_TLS_CODES = {35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91}


def _curl_code(exc: Exception) -> int | None:
    match = re.search(
        r"(?:HTTP request: \(|Failed to read response: \[\(<[^>]*>, )(\d+),", str(exc)
    )
    return int(match.group(1)) if match else None


def _wrong_path(endpoint: Endpoint) -> ConnectorError:
    return ConnectorError(
        "api",
        f"{endpoint.netloc} does not serve the oVirt API at '{endpoint.path}'. "
        f"The URL usually ends in {API_PATH}, for example {EXAMPLE}.",
    )


def _translate(exc: BaseException, endpoint: Endpoint, username: str) -> ConnectorError:
    """Map an ovirtsdk4 (or socket) exception to a ConnectorError."""
    where = endpoint.netloc
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, ovirtsdk4.AuthError):
        return ConnectorError(
            "auth", f"The user '{username}' was refused by {where}: wrong login or password."
        )
    code = _curl_code(exc) if isinstance(exc, ovirtsdk4.Error) else None
    if isinstance(exc, ovirtsdk4.TimeoutError) or code == CURL_TIMEOUT:
        return ConnectorError("timeout", f"{where} did not answer in time.")
    if code == CURL_COULDNT_RESOLVE_HOST:
        return ConnectorError("unreachable", f"Cannot reach {where}: the host name is unknown.")
    if isinstance(exc, ovirtsdk4.ConnectionError) or code == CURL_COULDNT_CONNECT:
        return ConnectorError("unreachable", f"Cannot reach {where}: connection refused.")
    if code in CURL_TLS_CODES:
        return ConnectorError("tls", f"The certificate of {where} is not trusted.")
    if isinstance(exc, ovirtsdk4.NotFoundError):
        return _wrong_path(endpoint)
    message = str(exc)
    if "isn't the expected XML" in message or "HTTP response code is 404" in message:
        return _wrong_path(endpoint)
    if "isn't the expected JSON" in message:
        return ConnectorError(
            "api",
            f"{where} does not answer like an oVirt engine (its single sign-on service is "
            f"missing). Enter the engine's API URL, for example {EXAMPLE}.",
        )
    if code is not None:
        return ConnectorError("unreachable", f"Cannot reach {where} (network error {code}).")
    network = tlslib.network_error(exc, where)
    if network is not None:
        return network
    detail = message if isinstance(exc, ovirtsdk4.Error) and message else type(exc).__name__
    return ConnectorError("api", f"{where} refused a request: {detail}")


def _ca_file() -> str | None:
    """The system CA bundle (honours SSL_CERT_FILE), so pycurl's bundled OpenSSL trusts
    exactly what Python's ``ssl`` trusted in the probe."""
    paths = ssl.get_default_verify_paths()
    return paths.cafile or None


@contextlib.contextmanager
def connection(
    endpoint: str, username: str, password: str, *, tls_fingerprint: str | None, timeout: float
):
    """An ``ovirtsdk4.Connection`` (its endpoint and certificate fingerprint alongside).

    Yields ``(connection, endpoint, fingerprint)``; on exit closes the connection and revokes
    its SSO token; every failure inside the block comes out as a ConnectorError. The SDK gets
    only the token, never the password.
    """
    parsed = parse_endpoint(
        endpoint, default_path=API_PATH, example=EXAMPLE, schemes=("https", "http")
    )
    fingerprint = None
    context = None
    if parsed.scheme == "https":
        fingerprint = tlslib.probe(parsed.host, parsed.port, timeout=timeout, pin=tls_fingerprint)
        context = (
            tlslib.pinned_context(fingerprint) if tls_fingerprint else tlslib.verifying_context()
        )
    # Our own login: the SDK's SSO requests ignore its timeout (see ovirt_sso).
    token = sso_token(parsed, username, password, context=context, timeout=timeout)
    conn = None
    try:
        conn = ovirtsdk4.Connection(
            url=parsed.url,
            token=token,
            insecure=bool(tls_fingerprint),
            ca_file=None if tls_fingerprint else _ca_file(),
            timeout=max(1, math.ceil(timeout)),
        )
        yield conn, parsed, fingerprint
    except Exception as exc:
        raise _translate(exc, parsed, username) from None
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close(logout=False)  # the SDK's logout has no timeout either
        sso_logout(parsed, token, context=context, timeout=timeout)


def _id(ref) -> str | None:
    return ref.id if ref is not None else None


def _enum(value) -> str | None:
    return value.value if value is not None else None


def collect(conn, *, level: str, cloud_name: str) -> Inventory:
    """Read the engine's inventory and the scopes for ``level``."""
    system = conn.system_service()
    datacenters = {
        dc.id: Datacenter(id=dc.id, name=dc.name or dc.id)
        for dc in system.data_centers_service().list()
    }
    clusters = {}
    for item in system.clusters_service().list():
        clusters[item.id] = Cluster(id=item.id, name=item.name or item.id)
        dc = datacenters.get(_id(item.data_center))
        if dc is not None:
            dc.clusters.append(clusters[item.id])
    hosts = {}
    for item in system.hosts_service().list():
        hosts[item.id] = Host(id=item.id, name=item.name or item.id)
        if _id(item.cluster) in clusters:
            clusters[_id(item.cluster)].hosts.append(hosts[item.id])
    for item in system.networks_service().list():
        dc = datacenters.get(_id(item.data_center))
        if dc is not None and item.name and item.name not in dc.networks:
            dc.networks.append(item.name)

    disks = {disk.id: disk for disk in system.disks_service().list()}
    vms_service = system.vms_service()
    for item in vms_service.list():
        vm = Vm(
            id=item.id,
            name=item.name or item.id,
            uuid=item.id,
            bios_uuid=item.id,
            power_state=_enum(item.status),
        )
        try:
            attachments = vms_service.vm_service(item.id).disk_attachments_service().list()
        except ovirtsdk4.NotFoundError:
            continue  # removed since the VM list was read
        for attachment in attachments:
            disk_id = _id(attachment.disk)
            disk = disks.get(disk_id)
            if disk is None and disk_id:
                with contextlib.suppress(ovirtsdk4.NotFoundError):
                    disk = system.disks_service().disk_service(disk_id).get()
            if disk is None:
                continue
            vm.disks.append(
                Disk(
                    key=disk.id,
                    label=disk.alias or disk.name or disk.id,
                    capacity_bytes=int(disk.provisioned_size or 0),
                    path=attachment.logical_name or "",
                )
            )
        if _id(item.host) in hosts:
            hosts[_id(item.host)].vms.append(vm)
        elif _id(item.cluster) in clusters:
            clusters[_id(item.cluster)].vms.append(vm)  # down: runs on no host

    inventory = Inventory(datacenters=sorted(datacenters.values(), key=lambda d: d.name))
    for dc in inventory.datacenters:
        dc.networks.sort()
        dc.clusters.sort(key=lambda c: c.name)
        for cluster in dc.clusters:
            cluster.hosts.sort(key=lambda h: h.name)
            cluster.vms.sort(key=lambda v: v.name)
            for host in cluster.hosts:
                host.vms.sort(key=lambda v: v.name)
    inventory.scopes = scopes(inventory, level=level, cloud_name=cloud_name)
    return inventory


def scopes(inventory: Inventory, *, level: str, cloud_name: str) -> list[Scope]:
    """One agent per cluster, host, datacenter or for the whole cloud, as the level says."""
    found = []
    if level == "cloud":
        return [Scope("cloud", "cloud", cloud_name, cloud_name, len(inventory.vms()))]
    for dc in inventory.datacenters:
        dc_vms = 0
        for cluster in dc.clusters:
            cluster_vms = len(cluster.vms) + sum(len(h.vms) for h in cluster.hosts)
            dc_vms += cluster_vms
            path = f"{dc.name}/{cluster.name}"
            if level == "cluster":
                found.append(Scope("cluster", cluster.id, cluster.name, path, cluster_vms))
            elif level == "host":
                for host in cluster.hosts:
                    found.append(
                        Scope("host", host.id, host.name, f"{path}/{host.name}", len(host.vms))
                    )
        if level == "datacenter":
            found.append(Scope("datacenter", dc.id, dc.name, dc.name, dc_vms))
    return found


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"discovery level must be one of {', '.join(LEVELS)}, not {level!r}")


def _warnings(endpoint: Endpoint, inventory: Inventory, level: str) -> list[str]:
    warnings = []
    if endpoint.scheme == "http":
        warnings.append(
            f"{endpoint.netloc} is used over plain HTTP: the password travels unencrypted. "
            "Use https:// if the engine offers it."
        )
    if not inventory.vms():
        warnings.append(
            "No virtual machines were found: check that the user may see them in the engine."
        )
    hostless = [vm.name for dc in inventory.datacenters for c in dc.clusters for vm in c.vms]
    if level == "host" and hostless:
        warnings.append(
            f"{len(hostless)} virtual machine(s) run on no host right now ("
            + ", ".join(hostless[:5])
            + (", ..." if len(hostless) > 5 else "")
            + "): host-level agents discover them only once they run."
        )
    return warnings


def check(
    endpoint: str,
    username: str,
    password: str,
    *,
    level: str,
    tls_fingerprint: str | None = None,
    timeout: float = 15,
) -> CheckResult:
    """Connect, log in (SSO), read the product and discover at ``level``; raises
    ConnectorError (and ValueError for a level outside :data:`LEVELS`)."""
    _check_level(level)
    with connection(
        endpoint, username, password, tls_fingerprint=tls_fingerprint, timeout=timeout
    ) as (conn, parsed, fingerprint):
        api = conn.system_service().get()  # the first request: logs in
        info = api.product_info
        name = (info.name if info else None) or "oVirt Engine"
        version = info.version.full_version if info and info.version else None
        inventory = collect(conn, level=level, cloud_name=parsed.host)
        return CheckResult(
            product=f"{name} {version}" if version else name,
            fingerprint=fingerprint,
            warnings=_warnings(parsed, inventory, level),
            inventory=inventory,
        )


def discover(
    endpoint: str,
    username: str,
    password: str,
    *,
    level: str,
    tls_fingerprint: str | None = None,
    timeout: float = 15,
) -> Inventory:
    """Connect, log in and return the inventory with the scopes for ``level``."""
    _check_level(level)
    with connection(
        endpoint, username, password, tls_fingerprint=tls_fingerprint, timeout=timeout
    ) as (conn, parsed, _):
        return collect(conn, level=level, cloud_name=parsed.host)
