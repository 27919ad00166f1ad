"""The oVirt connector against the in-test engine of ``tests.ovirt_support`` (no oVirt
simulator exists; that engine answers the REST API's documented XML and SSO JSON): inventory
at each discovery level, wrong login, unreachable, TLS trust and pinning, a wrong API path and
a hung engine."""

import functools
import http.server
import json
import threading
import time

import ovirtsdk4
import pytest

from clouds.connectors import ConnectorError, ovirt
from tests.net_support import closed_port, make_certificates, silent_server
from tests.ovirt_support import running_engine

USER, PASSWORD = "admin@internal", "Ov-s3cret!"


@pytest.fixture
def engine():
    with running_engine(username=USER, password=PASSWORD) as fake:
        yield fake


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("engine-tls"), name="engine")


@pytest.fixture
def tls_engine(certs):
    with running_engine(username=USER, password=PASSWORD, certificates=certs) as fake:
        yield fake


def failure(call) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        call()
    assert PASSWORD not in caught.value.message
    return caught.value


def test_check_reads_the_product_and_the_inventory_and_logs_out(engine):
    result = ovirt.check(engine.url, USER, PASSWORD, level="cluster")

    assert result.product == "oVirt Engine 4.5.5-1.el8"
    assert result.fingerprint is None  # plain http: no certificate
    inventory = result.inventory
    assert inventory.counts == {
        "datacenters": 2,
        "clusters": 3,
        "hosts": 3,
        "vms": 4,
        "disks": 5,
        "networks": 3,
    }
    default, remote = inventory.datacenters
    assert (default.name, remote.name) == ("Default", "Remote")
    assert [c.name for c in default.clusters] == ["Default", "Empty"]
    assert default.networks == ["VM LAN", "ovirtmgmt"]
    cluster = default.clusters[0]
    assert [h.name for h in cluster.hosts] == ["host1", "host2"]
    assert [vm.name for vm in cluster.vms] == ["old1"]  # down: on no host
    web1 = cluster.hosts[0].vms[0]
    assert (web1.id, web1.name, web1.power_state) == ("vm1", "web1", "up")
    assert [(d.key, d.label, d.capacity_bytes, d.path) for d in web1.disks] == [
        ("d1", "web1_Disk1", 8 << 30, "/dev/sda"),
        ("d2", "web1_Disk2", 1 << 30, "/dev/sdb"),
    ]
    assert [(s.kind, s.path, s.vms) for s in inventory.scopes] == [
        ("cluster", "Default/Default", 3),
        ("cluster", "Default/Empty", 0),
        ("cluster", "Remote/Edge", 1),
    ]
    assert json.loads(json.dumps(result.to_dict()))["inventory"]["counts"]["disks"] == 5
    # The connection was closed and its SSO token revoked.
    assert engine.requests[-1] == ("POST", "/ovirt-engine/services/sso-logout")
    assert engine.tokens == set()
    assert any("plain HTTP" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("host", [("host", "Default/Default/host1", 1), ("host", "Default/Default/host2", 1),
                  ("host", "Remote/Edge/host3", 1)]),
        ("datacenter", [("datacenter", "Default", 3), ("datacenter", "Remote", 1)]),
        ("cloud", [("cloud", "127.0.0.1", 4)]),
    ],
)  # fmt: skip
def test_each_discovery_level_has_its_own_scopes(engine, level, expected):
    inventory = ovirt.discover(engine.url, USER, PASSWORD, level=level)

    assert [(s.kind, s.path, s.vms) for s in inventory.scopes] == expected


def test_host_level_warns_about_vms_that_run_on_no_host(engine):
    result = ovirt.check(engine.url, USER, PASSWORD, level="host")

    assert (
        "1 virtual machine(s) run on no host right now (old1): host-level agents discover "
        "them only once they run."
    ) in result.warnings


def test_an_unknown_level_is_a_programming_error(engine):
    with pytest.raises(ValueError, match="discovery level must be one of"):
        ovirt.check(engine.url, USER, PASSWORD, level="rack")


def test_the_host_alone_gets_the_usual_api_path(engine):
    inventory = ovirt.discover(f"http://127.0.0.1:{engine.port}", USER, PASSWORD, level="cloud")

    assert inventory.counts["vms"] == 4
    assert ("GET", "/ovirt-engine/api/vms") in engine.requests


def test_a_wrong_password_is_an_auth_error_naming_the_user(engine):
    error = failure(lambda: ovirt.check(engine.url, USER, "wrong-one", level="cluster"))

    assert error.kind == "auth"
    assert error.message == (
        f"The user '{USER}' was refused by 127.0.0.1:{engine.port}: wrong login or password."
    )
    assert "wrong-one" not in error.message


def test_nothing_listening_is_unreachable():
    port = closed_port()

    for url in (f"http://127.0.0.1:{port}/ovirt-engine/api", f"127.0.0.1:{port}"):
        error = failure(lambda url=url: ovirt.check(url, USER, PASSWORD, level="cluster"))
        assert error.kind == "unreachable"
        assert error.message == f"Cannot reach 127.0.0.1:{port}: connection refused."


def test_an_untrusted_certificate_fails_with_its_fingerprint(tls_engine, certs):
    error = failure(lambda: ovirt.check(tls_engine.url, USER, PASSWORD, level="cluster"))

    assert error.kind == "tls"
    assert error.fingerprint == certs.fingerprint
    assert certs.fingerprint in error.message
    assert f"127.0.0.1:{tls_engine.port}" in error.message
    assert tls_engine.requests == []  # refused before any credentials were sent


def test_the_pinned_certificate_is_accepted(tls_engine, certs):
    result = ovirt.check(
        tls_engine.url, USER, PASSWORD, level="datacenter", tls_fingerprint=certs.fingerprint
    )

    assert result.fingerprint == certs.fingerprint
    assert result.inventory.counts["vms"] == 4
    assert result.warnings == []


def test_a_changed_certificate_is_refused(tls_engine, certs):
    error = failure(
        lambda: ovirt.check(
            tls_engine.url, USER, PASSWORD, level="cluster", tls_fingerprint="00" * 32
        )
    )

    assert error.kind == "tls"
    assert "has changed" in error.message
    assert error.fingerprint == certs.fingerprint
    assert tls_engine.requests == []


def test_a_certificate_from_a_trusted_ca_needs_no_pin(tls_engine, certs, monkeypatch):
    # Both our probe (Python's ssl) and the SDK (pycurl) then trust the engine's CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_file))

    result = ovirt.check(tls_engine.url, USER, PASSWORD, level="cloud")

    assert result.fingerprint == certs.fingerprint
    assert result.inventory.counts["hosts"] == 3


def test_a_wrong_api_path_says_where_the_api_usually_is(engine):
    error = failure(
        lambda: ovirt.check(f"http://127.0.0.1:{engine.port}/api", USER, PASSWORD, level="host")
    )

    assert error.kind == "api"
    assert "does not serve the oVirt API at '/api'" in error.message
    assert "usually ends in /ovirt-engine/api" in error.message


def test_a_web_server_that_is_no_ovirt_engine_is_an_api_error(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        error = failure(lambda: ovirt.check(url, USER, PASSWORD, level="cluster"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    assert error.kind == "api"
    assert "does not answer like an oVirt engine" in error.message


@pytest.mark.parametrize("where", ["everywhere", "api"])
def test_an_engine_that_never_answers_times_out(where):
    """Hung in the SSO login (which the SDK would wait on forever) or in an API request."""
    with running_engine(
        username=USER, password=PASSWORD, hang=where == "everywhere", hang_api=where == "api"
    ) as hung:
        started = time.monotonic()
        error = failure(lambda: ovirt.check(hung.url, USER, PASSWORD, level="cluster", timeout=1))
        elapsed = time.monotonic() - started

    assert error.kind == "timeout"
    assert error.message == f"127.0.0.1:{hung.port} did not answer in time."
    assert elapsed < 3


def test_a_tls_port_that_never_answers_times_out():
    with silent_server() as port:
        error = failure(
            lambda: ovirt.check(
                f"https://127.0.0.1:{port}", USER, PASSWORD, level="cloud", timeout=1
            )
        )

    assert error.kind == "timeout"


def test_garbage_endpoints_are_refused_with_an_example():
    for endpoint in ("", "ftp://engine", "engine:0", "https://engine/api?x"):
        error = failure(lambda e=endpoint: ovirt.check(e, USER, PASSWORD, level="cluster"))
        assert error.kind == "api"
        assert "https://engine.example.com/ovirt-engine/api" in error.message


def test_the_fake_engine_filters_vms_with_the_gui_search_grammar(engine):
    """Agents discover per scope with searches like ``cluster=Default``; the fake answers them."""
    conn = ovirtsdk4.Connection(url=engine.url, username=USER, password=PASSWORD, timeout=5)
    try:
        vms = conn.system_service().vms_service()
        assert [vm.name for vm in vms.list(search="cluster=Default")] == ["web1", "db1", "old1"]
        assert [vm.name for vm in vms.list(search="host=host3")] == ["edge1"]
        assert [vm.name for vm in vms.list(search='datacenter="Default" and status=up')] == [
            "web1",
            "db1",
        ]
    finally:
        conn.close()
