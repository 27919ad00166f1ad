"""A small in-test oVirt engine for the oVirt connector's tests.

No oVirt simulator exists (nothing like vcsim is packaged for oVirt), so this is an
``http.server`` on 127.0.0.1, in a thread, that answers the engine's REST API with the XML
and JSON the oVirt documentation and ovirtsdk4 4.6.3 define, exactly as recorded in
``/work/shared/docs/ovirt-api.md``:

- ``POST /ovirt-engine/sso/oauth/token`` (form fields, not Basic auth) → JSON ``access_token``;
  a wrong login → HTTP 400 JSON ``{"error_code": "access_denied", "error": ...}`` as the real
  engine sends for the ``ovirt-app-api`` scope;
- ``POST /ovirt-engine/services/sso-logout`` → JSON ``{}`` (``close()`` checks its type);
- ``GET <api>``, ``/datacenters``, ``/clusters``, ``/hosts``, ``/networks``, ``/vms`` (with
  the GUI search grammar ``name=``, ``cluster=``, ``host=``, ``datacenter=``, ``status=`` joined
  by ``and``), ``/vms/{id}``, ``/vms/{id}/diskattachments``, ``/disks``, ``/disks/{id}`` and
  the item URLs of datacenters, clusters and hosts; ids and hrefs as attributes, enums in lower
  case, ``application/xml;charset=UTF-8``, GET answered with 200 only;
- a missing token → 401 with an XML ``<fault>``, an unknown API item → 404 ``<fault>``, a path
  outside the API → the 404 HTML page a real engine's web server shows.

With a ``storage`` (:mod:`tests.ovirt_storage`: real qcow2 volumes behind the real
ovirt-imageio daemon) it is a replication peer too: ``/vms/{id}/snapshots`` (create: ``locked``
on the first look, ``ok`` from the next poll; list with the ``active`` entry; one; its
``disks`` with each volume's ``image_id``; DELETE merges the layer), the storage domain's
``disksnapshots`` (volumes with their disk, snapshot and parent), and ``/imagetransfers``
(download of a disk snapshot, shallow or not: ``initializing`` then ``transferring`` with a
``transfer_url`` on the daemon; ``finalize`` and ``cancel`` end it and remove its ticket). The
engine API stays a stand-in; the data it hands out is real.

Optionally over TLS (a certificate from :mod:`tests.net_support`), with configurable
credentials and API path. Every request is logged in ``engine.requests`` so tests can check
what the connector asked (never a password: the token body is not logged).
"""

import contextlib
import json
import secrets
import ssl
import threading
import urllib.parse
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape, quoteattr

API = "/ovirt-engine/api"


@dataclass
class Model:
    """The engine's inventory; every row is a dict of the XML fields used."""

    datacenters: list = field(
        default_factory=lambda: [
            {"id": "dc1", "name": "Default"},
            {"id": "dc2", "name": "Remote"},
        ]
    )
    clusters: list = field(
        default_factory=lambda: [
            {"id": "cl1", "name": "Default", "dc": "dc1"},
            {"id": "cl2", "name": "Empty", "dc": "dc1"},
            {"id": "cl3", "name": "Edge", "dc": "dc2"},
        ]
    )
    hosts: list = field(
        default_factory=lambda: [
            {"id": "h1", "name": "host1", "cluster": "cl1", "address": "192.0.2.11"},
            {"id": "h2", "name": "host2", "cluster": "cl1", "address": "192.0.2.12"},
            {"id": "h3", "name": "host3", "cluster": "cl3", "address": "192.0.2.13"},
        ]
    )
    networks: list = field(
        default_factory=lambda: [
            {"id": "n1", "name": "ovirtmgmt", "dc": "dc1"},
            {"id": "n2", "name": "VM LAN", "dc": "dc1"},
            {"id": "n3", "name": "ovirtmgmt", "dc": "dc2"},
        ]
    )
    vms: list = field(
        default_factory=lambda: [
            {"id": "vm1", "name": "web1", "cluster": "cl1", "host": "h1", "status": "up",
             "disks": ["d1", "d2"]},
            {"id": "vm2", "name": "db1", "cluster": "cl1", "host": "h2", "status": "up",
             "disks": ["d3"]},
            {"id": "vm3", "name": "old1", "cluster": "cl1", "host": None, "status": "down",
             "disks": ["d4"]},
            {"id": "vm4", "name": "edge1", "cluster": "cl3", "host": "h3", "status": "up",
             "disks": ["d5"]},
        ]
    )  # fmt: skip
    disks: list = field(
        default_factory=lambda: [
            {"id": f"d{i}", "alias": alias, "size": size}
            for i, (alias, size) in enumerate(
                [("web1_Disk1", 8 << 30), ("web1_Disk2", 1 << 30), ("db1_Disk1", 20 << 30),
                 ("old1_Disk1", 4 << 30), ("edge1_Disk1", 2 << 30)],
                start=1,
            )
        ]
    )  # fmt: skip


def _ref(tag: str, collection: str, ident: str | None) -> str:
    if not ident:
        return ""
    return f'<{tag} href="{API}/{collection}/{ident}" id="{ident}"/>'


def _open(tag: str, collection: str, ident: str) -> str:
    return f"<{tag} href={quoteattr(f'{API}/{collection}/{ident}')} id={quoteattr(ident)}>"


class Engine:
    """State of one fake engine: credentials, tokens, the model, the request log."""

    def __init__(self, *, username, password, model, api_path, hang, hang_api, storage=None):
        self.username, self.password = username, password
        self.model = model or Model()
        self.storage = storage  # tests/ovirt_storage.Storage: snapshots and image transfers
        self.snapshots: dict[str, list[dict]] = {}  # vm id -> its snapshots, oldest first
        # Faults a test asks for: snapshots that stay "locked", transfers that go this phase
        # (e.g. "paused_system", "finished_failure") instead of "transferring".
        self.snapshots_stay_locked = False
        self.transfer_fault: str | None = None
        self.lock = threading.RLock()
        self.api_path = api_path
        self.hang = hang
        self.hang_api = hang_api
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.released = threading.Event()
        self.url = ""
        self.port = 0

    # XML renderers -------------------------------------------------------------------------
    def api_xml(self) -> str:
        return (
            "<api><product_info><name>oVirt Engine</name><vendor>ovirt.org</vendor><version>"
            "<build>5</build><full_version>4.5.5-1.el8</full_version><major>4</major>"
            "<minor>5</minor><revision>0</revision></version></product_info>"
            "<time>2024-01-01T00:00:00.000+00:00</time></api>"
        )

    def datacenter_xml(self, dc) -> str:
        return (
            f"{_open('data_center', 'datacenters', dc['id'])}<name>{escape(dc['name'])}</name>"
            "<local>false</local><status>up</status><storage_format>v5</storage_format>"
            "<version><major>4</major><minor>7</minor></version></data_center>"
        )

    def cluster_xml(self, cluster) -> str:
        return (
            f"{_open('cluster', 'clusters', cluster['id'])}<name>{escape(cluster['name'])}</name>"
            "<version><major>4</major><minor>7</minor></version>"
            f"{_ref('data_center', 'datacenters', cluster['dc'])}</cluster>"
        )

    def host_xml(self, host) -> str:
        return (
            f"{_open('host', 'hosts', host['id'])}<name>{escape(host['name'])}</name>"
            f"<address>{host['address']}</address><status>up</status>"
            f"{_ref('cluster', 'clusters', host['cluster'])}</host>"
        )

    def network_xml(self, net) -> str:
        return (
            f"{_open('network', 'networks', net['id'])}<name>{escape(net['name'])}</name>"
            f"{_ref('data_center', 'datacenters', net['dc'])}</network>"
        )

    def vm_xml(self, vm) -> str:
        return (
            f"{_open('vm', 'vms', vm['id'])}<name>{escape(vm['name'])}</name>"
            f"<status>{vm['status']}</status><memory>1073741824</memory>"
            f"{_ref('cluster', 'clusters', vm['cluster'])}{_ref('host', 'hosts', vm['host'])}"
            f'<link href="{API}/vms/{vm["id"]}/diskattachments" rel="diskattachments"/></vm>'
        )

    def attachment_xml(self, vm, index, disk_id) -> str:
        return (
            f'<disk_attachment href="{API}/vms/{vm["id"]}/diskattachments/{disk_id}" '
            f'id="{disk_id}"><active>true</active><bootable>{str(index == 0).lower()}</bootable>'
            f"<interface>virtio_scsi</interface><logical_name>/dev/sd{'abcdefgh'[index]}"
            f"</logical_name>{_ref('disk', 'disks', disk_id)}{_ref('vm', 'vms', vm['id'])}"
            "</disk_attachment>"
        )

    def disk_xml(self, disk) -> str:
        return (
            f"{_open('disk', 'disks', disk['id'])}<name>{escape(disk['alias'])}</name>"
            f"<alias>{escape(disk['alias'])}</alias>"
            f"<provisioned_size>{disk['size']}</provisioned_size>"
            f"<actual_size>{disk['size'] // 2}</actual_size>"
            f"<total_size>{disk['size'] // 2}</total_size><format>cow</format>"
            "<sparse>true</sparse><status>ok</status><storage_type>image</storage_type>"
            "<content_type>data</content_type><backup>incremental</backup>"
            f"<image_id>{self.image_id(disk['id'])}</image_id><storage_domains>"
            f"{_ref('storage_domain', 'storagedomains', 'sd1')}</storage_domains></disk>"
        )

    def image_id(self, disk_id: str) -> str:
        if self.storage is not None and disk_id in self.storage.sizes:
            return self.storage.active(disk_id).id
        return f"img-{disk_id}"

    # snapshots and image transfers (with a storage) -----------------------------------------
    def snapshot_xml(self, vm_id: str, snap: dict) -> str:
        return (
            f"{_open('snapshot', f'vms/{vm_id}/snapshots', snap['id'])}"
            f"<description>{escape(snap['description'])}</description>"
            f"<date>{snap['date']}</date><persist_memorystate>false</persist_memorystate>"
            f"<snapshot_status>{snap['status']}</snapshot_status>"
            f"<snapshot_type>{snap['type']}</snapshot_type>{_ref('vm', 'vms', vm_id)}</snapshot>"
        )

    def snapshots_of(self, vm_id: str) -> list[dict]:
        active = {"id": f"active-{vm_id}", "description": "Active VM", "status": "ok",
                  "type": "active", "date": "2026-01-01T00:00:00.000Z", "volumes": {}}  # fmt: skip
        return [*self.snapshots.get(vm_id, []), active]

    def snapshot_disks_xml(self, vm, snap: dict) -> str:
        rows = []
        for disk_id, volume in snap["volumes"].items():
            disk = next(d for d in self.model.disks if d["id"] == disk_id)
            rows.append(
                f"{_open('disk', 'disks', disk_id)}<alias>{escape(disk['alias'])}</alias>"
                f"<provisioned_size>{disk['size']}</provisioned_size><format>cow</format>"
                f"<image_id>{volume}</image_id><status>ok</status>"
                f"<storage_domains>{_ref('storage_domain', 'storagedomains', 'sd1')}"
                "</storage_domains></disk>"
            )
        return f"<disks>{''.join(rows)}</disks>"

    def disk_snapshots_xml(self) -> str:
        rows = []
        for volume in self.storage.volumes.values():
            if volume.snapshot is None:
                continue
            parent = _ref("parent", "disksnapshots", volume.parent) if volume.parent else ""
            rows.append(
                f'<disk_snapshot href="{API}/storagedomains/sd1/disksnapshots/{volume.id}" '
                f'id="{volume.id}"><format>cow</format><status>ok</status>'
                f"{_ref('disk', 'disks', volume.disk)}"
                f'<snapshot id="{volume.snapshot}"/>{parent}</disk_snapshot>'
            )
        return f"<disk_snapshots>{''.join(rows)}</disk_snapshots>"

    def transfer_xml(self, transfer) -> str:
        urls = ""
        if transfer.phase == "transferring":
            url = self.storage.imageio.images_url(transfer.ticket)
            urls = f"<proxy_url>{url}</proxy_url><transfer_url>{url}</transfer_url>"
        return (
            f"{_open('image_transfer', 'imagetransfers', transfer.id)}"
            "<direction>download</direction><format>raw</format>"
            f"<phase>{transfer.phase}</phase><shallow>{str(transfer.shallow).lower()}</shallow>"
            f"{urls}{_ref('disk', 'disks', transfer.disk)}{_ref('host', 'hosts', 'h1')}"
            f"{_ref('image', 'images', transfer.volume)}</image_transfer>"
        )

    def route_storage(self, method: str, parts: list[str], body) -> tuple[int, str] | None:
        """Snapshots, disk snapshots and image transfers; None when the path is none of them."""
        if self.storage is None:
            return None
        with self.lock:
            if parts[:1] == ["vms"] and len(parts) >= 3 and parts[2] == "snapshots":
                return self._snapshots(method, parts, body)
            if parts == ["storagedomains", "sd1", "disksnapshots"] and method == "GET":
                return 200, self.disk_snapshots_xml()
            if parts[:1] == ["imagetransfers"]:
                return self._transfers(method, parts, body)
        return None

    def _snapshots(self, method, parts, body):
        vm = next((v for v in self.model.vms if v["id"] == parts[1]), None)
        if vm is None:
            return 404, parts[1]
        snaps = self.snapshots.setdefault(vm["id"], [])
        if len(parts) == 3 and method == "GET":
            rows = "".join(self.snapshot_xml(vm["id"], s) for s in self.snapshots_of(vm["id"]))
            return 200, f"<snapshots>{rows}</snapshots>"
        if len(parts) == 3 and method == "POST":
            snap = {"id": f"snap-{secrets.token_hex(6)}", "status": "locked", "type": "regular",
                    "description": body.findtext("description") or "",
                    "date": "2026-01-01T00:00:00.000Z", "volumes": {}}  # fmt: skip
            wanted = [d.get("id") for d in body.iter("disk")] or list(vm["disks"])
            snap["volumes"] = self.storage.freeze(snap["id"], wanted)
            snaps.append(snap)
            return 201, self.snapshot_xml(vm["id"], snap)
        snap = next((s for s in snaps if s["id"] == parts[3]), None)
        if snap is None:
            return 404, parts[3]
        if len(parts) == 4 and method == "GET":
            xml = self.snapshot_xml(vm["id"], snap)
            if not self.snapshots_stay_locked:
                snap["status"] = "ok"  # locked on the first look, ok from the next poll on
            return 200, xml
        if len(parts) == 5 and parts[4] == "disks" and method == "GET":
            return 200, self.snapshot_disks_xml(vm, snap)
        if len(parts) == 4 and method == "DELETE":
            try:
                self.storage.merge(snap["id"])
            except RuntimeError as exc:  # a volume is in use (an open transfer holds it)
                return 409, f"Cannot remove Snapshot: {exc}"
            snaps.remove(snap)
            return 200, ""
        return 404, "/".join(parts)

    def _transfers(self, method, parts, body):
        storage = self.storage
        if len(parts) == 1 and method == "GET":
            rows = "".join(self.transfer_xml(t) for t in storage.transfers.values())
            return 200, f"<image_transfers>{rows}</image_transfers>"
        if len(parts) == 1 and method == "POST":
            snapshot = body.find("snapshot")
            if snapshot is None or snapshot.get("id") not in storage.volumes:
                return 404, "disk snapshot"
            shallow = (body.findtext("shallow") or "false") == "true"
            transfer = storage.start_transfer(snapshot.get("id"), shallow)
            return 201, self.transfer_xml(transfer)
        transfer = storage.transfers.get(parts[1]) if len(parts) > 1 else None
        if transfer is None:
            return 404, "/".join(parts)
        if len(parts) == 2 and method == "GET":
            xml = self.transfer_xml(transfer)
            if transfer.phase == "initializing":
                transfer.phase = self.transfer_fault or "transferring"  # from the next poll on
                if transfer.phase == "finished_failure":  # the host tore the export down
                    storage.end_transfer(transfer.id, transfer.phase)
            elif transfer.phase == "finalizing_success":
                transfer.phase = "finished_success"
            return 200, xml
        if len(parts) == 3 and method == "POST" and parts[2] in ("finalize", "cancel"):
            phase = "finalizing_success" if parts[2] == "finalize" else "cancelled_user"
            storage.end_transfer(transfer.id, phase)
            return 200, "<action><status>complete</status></action>"
        return 404, "/".join(parts)

    # search ----------------------------------------------------------------------------------
    def matches(self, vm, search: str) -> bool:
        """The GUI search grammar, enough of it: ``key=value [and key=value ...]``."""
        cluster = next((c for c in self.model.clusters if c["id"] == vm["cluster"]), {})
        host = next((h for h in self.model.hosts if h["id"] == vm["host"]), {})
        dc = next((d for d in self.model.datacenters if d["id"] == cluster.get("dc")), {})
        fields = {
            "name": vm["name"],
            "cluster": cluster.get("name"),
            "host": host.get("name"),
            "datacenter": dc.get("name"),
            "status": vm["status"],
        }
        for clause in search.replace(" AND ", " and ").split(" and "):
            key, _, value = clause.strip().partition("=")
            value = value.strip().strip('"')
            if str(fields.get(key.strip().lower()) or "").lower() != value.lower():
                return False
        return True

    # routing ---------------------------------------------------------------------------------
    def route(self, path: str, query: dict) -> tuple[int, str]:
        """``(status, xml)`` for a GET below the API root."""
        m = self.model
        parts = [p for p in path.split("/") if p]
        tables = {
            "datacenters": ("data_centers", m.datacenters, self.datacenter_xml),
            "clusters": ("clusters", m.clusters, self.cluster_xml),
            "hosts": ("hosts", m.hosts, self.host_xml),
            "networks": ("networks", m.networks, self.network_xml),
            "vms": ("vms", m.vms, self.vm_xml),
            "disks": ("disks", m.disks, self.disk_xml),
        }
        if not parts:
            return 200, self.api_xml()
        handled = self.route_storage("GET", parts, None)
        if handled is not None:
            return handled
        if parts[0] not in tables or len(parts) > 3:
            return 404, "missing"
        root, rows, render = tables[parts[0]]
        if len(parts) == 1:
            if parts[0] == "vms" and "search" in query:
                rows = [vm for vm in rows if self.matches(vm, query["search"])]
            return 200, f"<{root}>{''.join(render(r) for r in rows)}</{root}>"
        row = next((r for r in rows if r["id"] == parts[1]), None)
        if row is None:
            return 404, parts[1]
        if len(parts) == 2:
            return 200, render(row)
        if parts[0] == "vms" and parts[2] == "diskattachments":
            body = "".join(self.attachment_xml(row, i, d) for i, d in enumerate(row["disks"]))
            return 200, f"<disk_attachments>{body}</disk_attachments>"
        return 404, parts[2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server_version = "FakeOvirtEngine/4.5"

    def log_message(self, *args):  # quiet; the engine keeps its own log
        pass

    @property
    def engine(self) -> Engine:
        return self.server.engine

    def _send(self, status: int, body: str, content_type: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, payload) -> None:
        self._send(status, json.dumps(payload), "application/json")

    def _xml(self, status: int, body: str) -> None:
        self._send(status, body, "application/xml;charset=UTF-8")

    def _fault(self, status: int, reason: str, detail: str) -> None:
        self._xml(
            status,
            f"<fault><reason>{escape(reason)}</reason><detail>{escape(detail)}</detail></fault>",
        )

    def _html_404(self) -> None:
        self._send(404, "<html><body><h1>Not Found</h1></body></html>", "text/html")

    def _hang_if_asked(self, api: bool = False) -> bool:
        if self.engine.hang or (api and self.engine.hang_api):
            self.engine.released.wait(30)
            self.close_connection = True
            return True
        return False

    def _api_call(self, method: str, raw: bytes) -> bool:
        """A POST or DELETE below the API (snapshots, image transfers); False if not one."""
        url = urllib.parse.urlsplit(self.path)
        api = self.engine.api_path
        if not url.path.startswith(api + "/"):
            return False
        self.engine.requests.append((method, self.path))
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.engine.tokens:
            self._fault(401, "Unauthorized", "token expired")
            return True
        parts = [p for p in url.path[len(api) :].split("/") if p]
        body = ElementTree.fromstring(raw) if raw.strip() else None
        handled = self.engine.route_storage(method, parts, body)
        if handled is None:
            self._fault(404, "Operation Failed", f"Entity not found: {url.path}")
        elif handled[0] == 404:
            self._fault(404, "Operation Failed", f"Entity not found: {handled[1]}")
        elif handled[0] >= 400:
            self._fault(handled[0], "Operation Failed", handled[1])
        else:
            self._xml(handled[0], handled[1])
        return True

    def do_DELETE(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self._api_call("DELETE", raw):
            self._html_404()

    def do_POST(self):
        if self._hang_if_asked():
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self._api_call("POST", raw):
            return
        form = urllib.parse.parse_qs(raw.decode())
        field_ = {k: v[0] for k, v in form.items()}
        self.engine.requests.append(("POST", self.path))
        if self.path == "/ovirt-engine/sso/oauth/token":
            user = field_.get("username", "")
            if (
                field_.get("grant_type") == "password"
                and user == self.engine.username
                and field_.get("password") == self.engine.password
            ):
                token = secrets.token_urlsafe(16)
                self.engine.tokens.add(token)
                self._json(
                    200,
                    {
                        "access_token": token,
                        "scope": field_.get("scope", ""),
                        "exp": "9999999999000",
                        "token_type": "bearer",
                    },
                )
            else:
                self._json(
                    400,
                    {
                        "error_code": "access_denied",
                        "error": f"Cannot authenticate user '{user}': "
                        "The username or password is incorrect..",
                    },
                )
        elif self.path == "/ovirt-engine/services/sso-logout":
            self.engine.tokens.discard(field_.get("token"))
            self._json(200, {})
        else:
            self._html_404()

    def do_GET(self):
        if self._hang_if_asked(api=True):
            return
        url = urllib.parse.urlsplit(self.path)
        self.engine.requests.append(("GET", self.path))
        api = self.engine.api_path
        if url.path != api and not url.path.startswith(api + "/"):
            self._html_404()
            return
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.engine.tokens:
            self._fault(401, "Unauthorized", "token expired")
            return
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        status, body = self.engine.route(url.path[len(api) :], query)
        if status == 200:
            self._xml(200, body)
        else:
            self._fault(404, "Operation Failed", f"Entity not found: {body}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tls_context: ssl.SSLContext | None = None

    def finish_request(self, request, client_address):
        # The handshake runs in the request's thread, so a client that gives up on our
        # certificate cannot stall the accept loop.
        if self.tls_context is not None:
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


@contextlib.contextmanager
def running_engine(
    *,
    username: str = "admin@internal",
    password: str = "secret",
    model: Model | None = None,
    api_path: str = API,
    certificates=None,
    hang: bool = False,
    hang_api: bool = False,
    storage=None,
):
    """Serve a fake engine on 127.0.0.1; yields the :class:`Engine` (``.url`` is the API URL).

    ``certificates`` (from :func:`tests.net_support.make_certificates`) turns on TLS.
    ``hang`` makes it accept requests and never answer them; ``hang_api`` does that only for
    the API's GETs (SSO still answers). ``storage`` (a :class:`tests.ovirt_storage.Storage`)
    adds snapshots, disk snapshots and image transfers backed by real qcow2 volumes and the
    real ovirt-imageio daemon.
    """
    engine = Engine(
        username=username,
        password=password,
        model=model,
        api_path=api_path,
        hang=hang,
        hang_api=hang_api,
        storage=storage,
    )
    server = _Server(("127.0.0.1", 0), _Handler)
    server.engine = engine
    scheme = "http"
    if certificates is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificates.cert_file, certificates.key_file)
        server.tls_context = context
        scheme = "https"
    engine.port = server.server_address[1]
    engine.url = f"{scheme}://127.0.0.1:{engine.port}{API}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield engine
    finally:
        engine.released.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
