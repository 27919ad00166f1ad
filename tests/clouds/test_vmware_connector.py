"""The VMware connector against a real vSphere API peer (vcsim built from Debian's govmomi):
inventory and scopes, TLS trust and pinning, wrong login, missing privileges, unreachable and
hung servers, and endpoints a customer might type."""

import json
import ssl
import time

import pytest
from pyVim.connect import Disconnect, SmartConnect

from clouds.connectors import ConnectorError, tls, vmware
from clouds.connectors.endpoint import parse_endpoint
from tests.net_support import closed_port, make_certificates, silent_server
from tests.ovirt_support import running_engine
from tests.vsphere_support import running_vcsim

PASSWORD = "Vc-s3cret!"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("vcsim-tls"), name="vcsim")


@pytest.fixture(scope="module")
def vcenter(certs):
    """A simulated vCenter serving ``certs``; yields its endpoint as a customer types it."""
    with running_vcsim(tls_cert=certs.cert_file, tls_key=certs.key_file) as (host, port):
        yield f"{host}:{port}"


def _pin_of(host, port):
    """The SHA-256 of the certificate a server presents (what a customer would trust)."""
    return tls.fingerprint_of(ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((host, port))))


def failure(call) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        call()
    assert PASSWORD not in caught.value.message
    return caught.value


@pytest.mark.vsphere
def test_check_reports_product_inventory_and_the_pinned_fingerprint(vcenter, certs):
    result = vmware.check(
        vcenter, "admin", PASSWORD, cluster_level=True, tls_fingerprint=certs.fingerprint
    )

    assert result.product.startswith("VMware vCenter Server 6.5.0 build-")
    assert result.fingerprint == certs.fingerprint
    assert result.warnings == []
    inventory = result.inventory
    assert inventory.counts == {
        "datacenters": 1,
        "clusters": 1,
        "hosts": 4,
        "vms": 4,
        "disks": 4,
        "networks": 3,
    }
    (dc,) = inventory.datacenters
    assert dc.name == "DC0"
    assert [c.name for c in dc.clusters] == ["DC0_C0"]
    assert [h.name for h in dc.clusters[0].hosts] == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
    assert [h.name for h in dc.hosts] == ["DC0_H0"]
    assert [vm.name for vm in dc.hosts[0].vms] == ["DC0_H0_VM0", "DC0_H0_VM1"]
    assert sorted(vm.name for vm in inventory.vms()) == [
        "DC0_C0_RP0_VM0",
        "DC0_C0_RP0_VM1",
        "DC0_H0_VM0",
        "DC0_H0_VM1",
    ]
    assert dc.networks == ["DC0_DVPG0", "DVS0-DVUplinks-9", "VM Network"]
    vm = dc.hosts[0].vms[0]
    assert vm.power_state == "poweredOn"
    assert vm.id.startswith("vm-") and vm.uuid
    assert vm.networks == ["DC0_DVPG0"]
    (disk,) = vm.disks
    assert disk.capacity_bytes == 1 << 20
    assert disk.path == "[LocalDS_0] DC0_H0_VM0/disk1.vmdk"
    assert disk.key.isdigit() and disk.label

    # Cluster level: an agent per cluster, and per standalone host (it is in no cluster).
    assert [(s.kind, s.path, s.vms) for s in inventory.scopes] == [
        ("cluster", "DC0/DC0_C0", 2),
        ("host", "DC0/DC0_H0", 2),
    ]
    as_json = json.loads(json.dumps(result.to_dict()))
    assert as_json["inventory"]["counts"]["vms"] == 4
    assert as_json["inventory"]["datacenters"][0]["hosts"][0]["vms"][0]["disks"][0]["path"]


@pytest.mark.vsphere
def test_host_level_discovery_needs_an_agent_per_host(vcenter, certs):
    inventory = vmware.discover(
        f"https://{vcenter}/sdk",
        "admin",
        PASSWORD,
        cluster_level=False,
        tls_fingerprint=certs.fingerprint.replace(":", "").lower(),  # any spelling of the pin
    )

    paths = [(s.kind, s.path) for s in inventory.scopes]
    assert paths == [
        ("host", "DC0/DC0_C0/DC0_C0_H0"),
        ("host", "DC0/DC0_C0/DC0_C0_H1"),
        ("host", "DC0/DC0_C0/DC0_C0_H2"),
        ("host", "DC0/DC0_H0"),
    ]
    assert sum(s.vms for s in inventory.scopes) == 4


@pytest.mark.vsphere
def test_a_certificate_from_a_trusted_ca_needs_no_pin(vcenter, certs, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_file))

    result = vmware.check(f"https://{vcenter}/", "admin", PASSWORD, cluster_level=True)

    assert result.fingerprint == certs.fingerprint
    assert result.inventory.counts["vms"] == 4


@pytest.mark.vsphere
def test_an_untrusted_certificate_fails_with_its_fingerprint(vcenter, certs):
    error = failure(lambda: vmware.check(vcenter, "admin", PASSWORD, cluster_level=True))

    assert error.kind == "tls"
    assert error.fingerprint == certs.fingerprint
    assert "not trusted" in error.message and certs.fingerprint in error.message
    assert vcenter in error.message


@pytest.mark.vsphere
def test_vcsims_own_self_signed_certificate_is_refused_then_trusted_by_pin():
    with running_vcsim() as (host, port):
        expected = _pin_of(host, port)

        error = failure(lambda: vmware.check(f"{host}:{port}", "u", PASSWORD, cluster_level=True))
        assert (error.kind, error.fingerprint) == ("tls", expected)

        result = vmware.check(
            f"{host}:{port}", "u", PASSWORD, cluster_level=True, tls_fingerprint=error.fingerprint
        )
        assert result.fingerprint == expected


@pytest.mark.vsphere
def test_a_different_certificate_than_the_pinned_one_is_refused(vcenter, certs):
    pinned = "AB:" * 31 + "AB"

    error = failure(
        lambda: vmware.check(vcenter, "admin", PASSWORD, cluster_level=True, tls_fingerprint=pinned)
    )

    assert error.kind == "tls"
    assert "has changed" in error.message
    assert error.fingerprint == certs.fingerprint


@pytest.mark.vsphere
def test_a_wrong_password_is_an_auth_error_naming_the_user():
    with running_vcsim(user="acura", password=PASSWORD) as (host, port):
        endpoint = f"{host}:{port}"
        pin = _pin_of(host, port)  # this simulator serves vcsim's own certificate

        error = failure(
            lambda: vmware.check(
                endpoint, "acura", "wrong-one", cluster_level=True, tls_fingerprint=pin
            )
        )
        assert error.kind == "auth"
        assert error.message == (
            f"The user 'acura' was refused by {endpoint}: wrong login or password."
        )
        assert "wrong-one" not in error.message

        ok = vmware.check(endpoint, "acura", PASSWORD, cluster_level=True, tls_fingerprint=pin)
        assert ok.inventory.counts["vms"] == 4


@pytest.mark.vsphere
def test_missing_required_privileges_are_named_with_their_labels():
    denied = ["VirtualMachine.State.CreateSnapshot", "VirtualMachine.Config.ChangeTracking"]
    with running_vcsim(deny_privileges=[*denied, "Global.Licenses"]) as (host, port):
        error = failure(
            lambda: vmware.check(
                f"{host}:{port}",
                "backup",
                PASSWORD,
                cluster_level=True,
                tls_fingerprint=_pin_of(host, port),
            )
        )

    assert error.kind == "privileges"
    assert error.missing == [
        "VirtualMachine.State.CreateSnapshot (Virtual machine > Snapshot management > "
        "Create snapshot)",
        "VirtualMachine.Config.ChangeTracking (Virtual machine > Configuration > "
        "Disk change tracking)",
    ]
    assert "The user 'backup' lacks required privileges" in error.message
    for name in error.missing:
        assert name in error.message
    assert "Global.Licenses" not in error.message  # only recommended


@pytest.mark.vsphere
def test_missing_recommended_privileges_are_warnings():
    with running_vcsim(deny_privileges=["Global.Licenses", "Global.EnableMethods"]) as (h, p):
        result = vmware.check(
            f"{h}:{p}", "backup", PASSWORD, cluster_level=False, tls_fingerprint=_pin_of(h, p)
        )

    assert result.warnings == [
        "Recommended privilege missing: Global.EnableMethods (Global > Enable methods).",
        "Recommended privilege missing: Global.Licenses (Global > Licenses).",
    ]
    assert result.inventory.counts["vms"] == 4


def test_privileges_granted_on_every_datacenter_count_as_granted():
    required = set(vmware.REQUIRED_PRIVILEGES)
    granted = {"root": set(vmware.RECOMMENDED_PRIVILEGES), "dc1": required, "dc2": required}

    assert vmware.evaluate_privileges(granted, "root", ["dc1", "dc2"]) == ([], [])

    granted["dc2"] = required - {"VirtualMachine.Config.DiskLease"}
    missing, recommended = vmware.evaluate_privileges(granted, "root", ["dc1", "dc2"])
    assert (missing, recommended) == (["VirtualMachine.Config.DiskLease"], [])


def test_nothing_listening_is_unreachable():
    port = closed_port()

    error = failure(lambda: vmware.check(f"127.0.0.1:{port}", "u", PASSWORD, cluster_level=True))

    assert error.kind == "unreachable"
    assert error.message == f"Cannot reach 127.0.0.1:{port}: connection refused."


def test_a_server_that_never_answers_times_out():
    with silent_server() as port:
        started = time.monotonic()
        error = failure(
            lambda: vmware.check(f"127.0.0.1:{port}", "u", PASSWORD, cluster_level=True, timeout=1)
        )
        elapsed = time.monotonic() - started

    assert error.kind == "timeout"
    assert error.message == f"127.0.0.1:{port} did not answer in time."
    assert elapsed < 3


@pytest.mark.vsphere
def test_a_server_without_the_vsphere_api_at_that_path_is_an_api_error(vcenter, certs):
    error = failure(
        lambda: vmware.check(
            f"https://{vcenter}/ovirt-engine/api",
            "u",
            PASSWORD,
            cluster_level=True,
            tls_fingerprint=certs.fingerprint,
        )
    )

    assert error.kind == "api"
    assert "does not answer like a vSphere API" in error.message


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("", "it is empty"),
        ("vc enter.example", "it contains spaces"),
        ("ftp://vcenter.example", "it must start with https://"),
        ("http://vcenter.example", "it must start with https://"),
        ("vcenter.example:99999", "the port is not a number from 1 to 65535"),
        ("vcenter.example:abc", "the port is not a number from 1 to 65535"),
        ("bad!host", "'bad!host' is not a host name or IP address"),
        ("https://vcenter.example/sdk?x=1", "it must not contain '?' or '#'"),
        ("https://:443/sdk", "the host name is missing"),
    ],
)
def test_garbage_endpoints_are_refused_before_any_traffic(endpoint, reason):
    error = failure(lambda: vmware.check(endpoint, "u", PASSWORD, cluster_level=True))

    assert error.kind == "api"
    assert reason in error.message
    assert "Enter for example vcenter.example.com" in error.message


def test_credentials_in_the_endpoint_are_refused_without_echoing_them():
    error = failure(
        lambda: vmware.check("admin:Hunter2@vcenter.example", "u", PASSWORD, cluster_level=True)
    )

    assert error.kind == "api"
    assert "Hunter2" not in error.message
    assert "must not contain a user name or password" in error.message


@pytest.mark.vsphere
def test_every_check_logs_its_session_out_even_when_it_fails():
    with running_vcsim(deny_privileges=["VirtualMachine.Config.DiskLease"]) as (host, port):
        endpoint, pin = f"{host}:{port}", _pin_of(host, port)
        vmware.discover(endpoint, "one", PASSWORD, cluster_level=True, tls_fingerprint=pin)
        failure(
            lambda: vmware.check(endpoint, "two", PASSWORD, cluster_level=True, tls_fingerprint=pin)
        )

        observer = SmartConnect(
            host=host, port=port, user="observer", pwd="x", disableSslCertValidation=True
        )
        try:
            users = [s.userName for s in observer.content.sessionManager.sessionList]
        finally:
            Disconnect(observer)

    assert users == ["observer"]


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("vcenter.dts.loc", ("https", "vcenter.dts.loc", 443, "/sdk")),
        (" vcenter:8443 ", ("https", "vcenter", 8443, "/sdk")),
        ("https://vcenter/sdk/", ("https", "vcenter", 443, "/sdk")),
        ("HTTPS://VC.example:9443", ("https", "vc.example", 9443, "/sdk")),
        ("10.0.0.5", ("https", "10.0.0.5", 443, "/sdk")),
        ("fe80::1", ("https", "fe80::1", 443, "/sdk")),
        ("https://[2001:db8::7]:8443/sdk", ("https", "2001:db8::7", 8443, "/sdk")),
    ],
)
def test_endpoints_as_customers_type_them(typed, parsed):
    endpoint = parse_endpoint(typed, default_path="/sdk", example=vmware.EXAMPLE)

    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.path) == parsed


def test_a_plain_http_port_fails_the_tls_handshake():
    with running_engine() as web:  # any plain-HTTP server will do
        error = failure(
            lambda: vmware.check(f"127.0.0.1:{web.port}", "u", PASSWORD, cluster_level=True)
        )

    assert error.kind == "tls"
    assert f"127.0.0.1:{web.port} did not complete a TLS handshake" in error.message
    assert "is this the HTTPS port?" in error.message
