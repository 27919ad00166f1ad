"""The wizard's VMware and oVirt runs: a new cloud is checked against a real vSphere
simulator (vcsim) or the in-test oVirt engine before the wizard goes on; wrong credentials,
an untrusted certificate and bad network settings each stop at step 3 with nothing saved."""

import pytest

from clouds.crypto import unseal
from clouds.models import Cloud, DownloadLink
from protection.models import MachineGroup
from tests.ovirt_support import running_engine
from tests.vsphere_support import running_vcsim

from .wizard_support import accept_requirements, errors, link_path, options, start, step_url

STATIC = {
    "net-mode": "static",
    "net-ip": "172.22.6.230",
    "net-netmask": "255.255.0.0",
    "net-gateway": "172.22.1.2",
    "net-dns": "1.1.1.1, 2.2.2.2",
}


def vmware_fields(host, port, password, **extra):
    return {
        "new_group": "vSphere VMs",
        "cloud_mode": "new",
        "cloud-name": "vcenter",
        "cloud-endpoint": f"{host}:{port}",
        "cloud-login": "acura",
        "cloud-password": password,
        "cloud-on_replication_start": "power_off",
        "cloud-on_replication_finish": "power_on",
        "cloud-disk_storage_threshold_percent": "10",
        "cloud-free_space_threshold_percent": "15",
        "cloud-cluster_level_discover": "on",
        **extra,
    }


def nothing_saved(customer):
    assert not Cloud.objects.for_customer(customer).exists()
    assert not MachineGroup.objects.for_customer(customer).exists()
    assert not DownloadLink.objects.for_customer(customer).exists()


@pytest.mark.vsphere
def test_the_vmware_run_checks_the_new_cloud_against_the_simulator(operator_client, customer):
    draft = start(operator_client, "vmware")
    page = operator_client.get(step_url(draft, 2)).content.decode()
    assert "VMware Consolidated Backup user" in page and "tcp/udp/902" in page
    accept_requirements(operator_client, draft)
    with running_vcsim(user="acura", password="s3cret") as (host, port):
        # 1. vcsim's certificate is self-signed: the wizard offers to trust it.
        response = options(operator_client, draft, vmware_fields(host, port, "s3cret", **STATIC))
        assert response.status_code == 200
        assert "is not trusted" in errors(response) or "not trusted" in response.content.decode()
        fingerprint = response.context["offered_fingerprint"]
        assert fingerprint and 'data-testid="trust-checkbox"' in response.content.decode()
        assert "s3cret" not in response.content.decode()  # never rendered back
        nothing_saved(customer)
        # 2. Trusted, but a wrong password: refused, nothing saved.
        response = options(
            operator_client,
            draft,
            vmware_fields(
                host, port, "wrong", **STATIC, **{"cloud-trust_fingerprint": fingerprint}
            ),
        )
        assert response.status_code == 200
        assert "wrong login or password" in response.content.decode()
        nothing_saved(customer)
        # 3. Trusted and right: the cloud is registered, and step 4 gives the appliance.
        response = options(
            operator_client,
            draft,
            vmware_fields(
                host, port, "s3cret", **STATIC, **{"cloud-trust_fingerprint": fingerprint}
            ),
        )
        assert response["Location"] == step_url(draft, 4)
    cloud = Cloud.objects.for_customer(customer).get()
    assert (cloud.name, cloud.platform, cloud.login, cloud.tls_fingerprint) == (
        "vcenter",
        "vmware",
        "acura",
        fingerprint,
    )
    assert (cloud.on_replication_start, cloud.on_replication_finish) == ("power_off", "power_on")
    assert (cloud.disk_storage_threshold_percent, cloud.free_space_threshold_percent) == (10, 15)
    assert cloud.cluster_level_discover and not cloud.enforce_quiesce
    assert "s3cret" not in cloud.password_sealed and unseal(cloud.password_sealed) == "s3cret"
    assert cloud.check_ok and [s["name"] for s in cloud.inventory["scopes"]] == ["DC0_C0", "DC0_H0"]
    link = DownloadLink.objects.for_customer(customer).get()
    assert link.cloud == cloud and link.network == {
        "mode": "static",
        "ip": "172.22.6.230",
        "netmask": "255.255.0.0",
        "gateway": "172.22.1.2",
        "dns": ["1.1.1.1", "2.2.2.2"],
    }
    step4 = operator_client.get(step_url(draft, 4)).content.decode()
    assert "deploy it on each ESXi host" in step4 and "hvragent" in step4
    download = operator_client.get(link_path(step4))
    assert download.status_code == 200
    # A second run picks the registered cloud without typing anything again.
    second = start(operator_client, "vmware")
    accept_requirements(operator_client, second)
    page = operator_client.get(step_url(second, 3))
    assert page.context["cloud_choice_form"]["cloud_mode"].value() == "registered"
    response = options(
        operator_client,
        second,
        {
            "new_group": "More VMs",
            "cloud_mode": "registered",
            "cloud": cloud.pk,
            "net-mode": "dhcp",
        },
    )
    assert response["Location"] == step_url(second, 4)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("net-ip", "172.22.6.300", "is not an IPv4 address"),
        ("net-netmask", "255.0.255.0", "is not a subnet mask"),
        ("net-gateway", "10.0.0.1", "is outside the agent"),
        ("net-dns", "1.1.1.1; 2.2.2.2", "separate servers with commas"),
        ("net-dns", "", "at least one DNS server"),
    ],
)
def test_bad_static_network_settings_stop_before_any_check(
    operator_client, customer, field, value, message
):
    draft = start(operator_client, "vmware")
    accept_requirements(operator_client, draft)
    data = vmware_fields("127.0.0.1", 1, "pw", **{**STATIC, field: value})
    response = options(operator_client, draft, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    nothing_saved(customer)


def test_a_vmware_run_needs_a_cloud(operator_client, customer):
    draft = start(operator_client, "vmware")
    accept_requirements(operator_client, draft)
    response = options(
        operator_client, draft, {"new_group": "G", "cloud_mode": "registered", "net-mode": "dhcp"}
    )
    assert "Choose a registered cloud, or register a new one." in response.content.decode()
    nothing_saved(customer)


def test_an_unreachable_vcenter_is_named(operator_client, customer):
    draft = start(operator_client, "vmware")
    accept_requirements(operator_client, draft)
    response = options(
        operator_client, draft, vmware_fields("127.0.0.1", 9, "pw", **{"net-mode": "dhcp"})
    )
    assert "Cannot reach 127.0.0.1:9" in response.content.decode()
    nothing_saved(customer)


def ovirt_fields(url, password, level="host"):
    return {
        "new_group": "oVirt VMs",
        "cloud_mode": "new",
        "cloud-name": "zvirt_source",
        "cloud-endpoint": url,
        "cloud-login": "admin@internal",
        "cloud-password": password,
        "cloud-discovery_level": level,
    }


def test_the_ovirt_run_checks_the_engine(operator_client, customer):
    draft = start(operator_client, "ovirt")
    page = operator_client.get(step_url(draft, 2)).content.decode()
    assert "at least 10 GB" in page and "udp/12201" in page
    accept_requirements(operator_client, draft)
    with running_engine(password="secret") as engine:
        response = options(operator_client, draft, ovirt_fields(engine.url, "nope"))
        assert "wrong login or password" in response.content.decode()
        nothing_saved(customer)
        response = options(operator_client, draft, ovirt_fields(engine.url, "secret"))
        assert response["Location"] == step_url(draft, 4)
    cloud = Cloud.objects.for_customer(customer).get()
    assert (cloud.platform, cloud.discovery_level, cloud.check_ok) == ("ovirt", "host", True)
    assert cloud.inventory["scopes_total"] == 3  # one agent per host: host1..host3
    step4 = operator_client.get(step_url(draft, 4)).content.decode()
    assert "according to the chosen discovery level" in step4 and "one agent per host" in step4
    assert operator_client.get(link_path(step4)).status_code == 200
