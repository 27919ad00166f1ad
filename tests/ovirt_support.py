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

    def __init__(self, *, username, password, model, api_path, hang, hang_api):
        self.username, self.password = username, password
        self.model = model or Model()
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
            f"<image_id>img-{disk['id']}</image_id><storage_domains>"
            f"{_ref('storage_domain', 'storagedomains', 'sd1')}</storage_domains></disk>"
        )

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

    def do_POST(self):
        if self._hang_if_asked():
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
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
):
    """Serve a fake engine on 127.0.0.1; yields the :class:`Engine` (``.url`` is the API URL).

    ``certificates`` (from :func:`tests.net_support.make_certificates`) turns on TLS.
    ``hang`` makes it accept requests and never answer them; ``hang_api`` does that only for
    the API's GETs (SSO still answers).
    """
    engine = Engine(
        username=username,
        password=password,
        model=model,
        api_path=api_path,
        hang=hang,
        hang_api=hang_api,
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
