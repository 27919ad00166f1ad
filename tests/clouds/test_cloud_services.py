"""cloud_create / cloud_update / cloud_test / cloud_delete against real peers: the vSphere
simulator (vcsim, with credentials and its self-signed certificate) and the in-test oVirt
engine. A refused check saves nothing; the password is sealed at rest and replaceable."""

import pytest
from django.core.exceptions import ValidationError

from clouds.connectors import ConnectorError, vmware
from clouds.crypto import unseal
from clouds.models import Cloud
from clouds.services import agent_delete
from clouds.services.clouds import (
    CloudCheckFailed,
    cloud_create,
    cloud_delete,
    cloud_password,
    cloud_test,
    cloud_update,
)
from tests.ovirt_support import running_engine
from tests.vsphere_support import running_vcsim

from .cloud_support import PASSWORD, make_cloud, make_link, raw_cloud_row
from .conftest import enroll

USER = "acura@vsphere.local"


def fingerprint_of(endpoint: str) -> str:
    """The simulator's certificate fingerprint, as the connector reports an untrusted one."""
    with pytest.raises(ConnectorError) as refused:
        vmware.check(endpoint, USER, PASSWORD, cluster_level=False, timeout=10)
    assert refused.value.kind == "tls"
    return refused.value.fingerprint


@pytest.fixture(scope="module")
def vcsim():
    """A simulated vCenter that accepts exactly USER / PASSWORD: (endpoint, fingerprint)."""
    with running_vcsim(user=USER, password=PASSWORD) as (host, port):
        endpoint = f"{host}:{port}"
        yield endpoint, fingerprint_of(endpoint)


def vmware_cloud(customer, vcsim, name="vcenter", **kwargs):
    endpoint, fingerprint = vcsim
    return cloud_create(
        customer,
        platform="vmware",
        name=name,
        endpoint=endpoint,
        login=USER,
        password=kwargs.pop("password", PASSWORD),
        tls_fingerprint=kwargs.pop("tls_fingerprint", fingerprint),
        **kwargs,
    )


def stored(cloud) -> Cloud:
    return Cloud.objects.for_customer(cloud.customer_id).get(pk=cloud.pk)


# --- cloud_create -------------------------------------------------------------------------


@pytest.mark.vsphere
def test_create_checks_the_simulator_and_seals_the_password(customer, vcsim):
    cloud = vmware_cloud(
        customer,
        vcsim,
        options={"cluster_level_discover": True, "disk_storage_threshold_percent": 100},
    )
    cloud = stored(cloud)
    assert cloud.check_ok is True and cloud.checked_at is not None
    assert cloud.product.startswith("VMware vCenter Server")
    assert cloud.tls_fingerprint == vcsim[1]
    assert (cloud.inventory["datacenters"], cloud.inventory["hosts"]) == (1, 4)
    # Cluster level: one agent for the cluster and one for the standalone host.
    assert cloud.inventory["vms"] == 4 and cloud.inventory["scopes_total"] == 2
    assert cloud.cluster_level_discover and cloud.disk_storage_threshold_percent == 100
    # Sealed at rest: not in any column of the row, yet the service can open it.
    assert PASSWORD not in raw_cloud_row(cloud)
    assert cloud.password_sealed and PASSWORD not in cloud.password_sealed
    assert cloud_password(cloud) == unseal(cloud.password_sealed) == PASSWORD


@pytest.mark.vsphere
def test_create_refuses_an_untrusted_certificate_and_a_wrong_password(customer, vcsim):
    with pytest.raises(CloudCheckFailed) as untrusted:
        vmware_cloud(customer, vcsim, tls_fingerprint="")
    assert untrusted.value.kind == "tls" and untrusted.value.fingerprint == vcsim[1]
    assert "not trusted" in untrusted.value.message
    with pytest.raises(CloudCheckFailed) as wrong:
        vmware_cloud(customer, vcsim, password="not-it")
    assert wrong.value.kind == "auth" and "wrong login or password" in wrong.value.message
    assert not Cloud.objects.for_customer(customer).exists()


@pytest.mark.vsphere
def test_names_are_unique_per_customer_whatever_the_case(customer, other_customer, vcsim):
    vmware_cloud(customer, vcsim, name="vCenter")
    with pytest.raises(ValidationError) as duplicate:
        vmware_cloud(customer, vcsim, name="VCENTER")
    assert "already exists" in duplicate.value.message_dict["name"][0]
    vmware_cloud(other_customer, vcsim, name="vcenter")  # another customer's is no clash
    other = make_cloud(customer, name="second")
    with pytest.raises(ValidationError) as renamed:
        cloud_update(other, name="vcenter ", endpoint=other.endpoint, login=other.login)
    assert "already exists" in renamed.value.message_dict["name"][0]
    assert stored(other).name == "second"


@pytest.mark.parametrize("value", [-1, 101, "5", 2.5, True, None])
def test_percentages_are_whole_numbers_from_0_to_100(customer, value):
    for field in ("disk_storage_threshold_percent", "free_space_threshold_percent"):
        with pytest.raises(ValidationError) as refused:
            make_cloud(customer, options={field: value})
        assert "0 to 100" in refused.value.message_dict[field][0]
    assert not Cloud.objects.for_customer(customer).exists()


def test_percentage_bounds_and_choices_are_accepted(customer):
    cloud = make_cloud(
        customer,
        options={
            "disk_storage_threshold_percent": 0,
            "free_space_threshold_percent": 100,
            "on_replication_start": "power_off",
            "on_replication_finish": "power_on",
        },
    )
    assert (cloud.disk_storage_threshold_percent, cloud.free_space_threshold_percent) == (0, 100)
    with pytest.raises(ValidationError) as refused:
        make_cloud(customer, name="x", options={"on_replication_start": "reboot"})
    assert "on_replication_start" in refused.value.message_dict


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"platform": "linux"}, "platform"),
        ({"name": "  "}, "name"),
        ({"endpoint": ""}, "endpoint"),
        ({"login": ""}, "login"),
        ({"password": ""}, "password"),
        ({"name": "n" * 101}, "name"),
        ({"options": {"discovery_level": "cluster"}}, "__all__"),  # an oVirt option on VMware
    ],
)
def test_create_validates_every_field(customer, fields, error):
    values = {
        "platform": "vmware",
        "name": "vcenter",
        "endpoint": "vcenter.example.test",
        "login": "admin",
        "password": PASSWORD,
        **fields,
    }
    with pytest.raises(ValidationError) as refused:
        cloud_create(customer, check=False, **values)
    assert error in refused.value.message_dict
    assert not Cloud.objects.for_customer(customer).exists()


# --- cloud_update -------------------------------------------------------------------------


@pytest.mark.vsphere
def test_update_keeps_the_password_when_empty_and_checks_only_when_needed(customer, vcsim):
    cloud = vmware_cloud(customer, vcsim)
    sealed, checked_at = cloud.password_sealed, cloud.checked_at
    # Name and options only: no check, password kept.
    cloud_update(
        cloud,
        name="renamed",
        endpoint=cloud.endpoint,
        login=cloud.login,
        password="",
        options={"enforce_quiesce": True, "free_space_threshold_percent": 20},
    )
    cloud = stored(cloud)
    assert (cloud.name, cloud.enforce_quiesce, cloud.free_space_threshold_percent) == (
        "renamed",
        True,
        20,
    )
    assert cloud.password_sealed == sealed and cloud.checked_at == checked_at
    # The discovery scope changes: checked again with the stored password.
    cloud_update(
        cloud,
        name="renamed",
        endpoint=cloud.endpoint,
        login=cloud.login,
        options={"cluster_level_discover": True},
    )
    cloud = stored(cloud)
    assert cloud.checked_at > checked_at and cloud.password_sealed == sealed
    assert cloud_password(cloud) == PASSWORD


@pytest.mark.vsphere
def test_a_new_password_is_checked_then_replaces_the_stored_one(customer):
    with running_vcsim() as (host, port):  # accepts any password
        endpoint = f"{host}:{port}"
        fingerprint = fingerprint_of(endpoint)
        cloud = vmware_cloud(customer, (endpoint, fingerprint))
        cloud_update(cloud, name=cloud.name, endpoint=endpoint, login=USER, password="An0ther-one")
    cloud = stored(cloud)
    assert cloud_password(cloud) == "An0ther-one"
    assert "An0ther-one" not in raw_cloud_row(cloud) and PASSWORD not in raw_cloud_row(cloud)


@pytest.mark.vsphere
def test_a_failed_check_changes_nothing(customer, vcsim):
    cloud = vmware_cloud(customer, vcsim)
    before = raw_cloud_row(cloud)
    with pytest.raises(CloudCheckFailed) as wrong:
        cloud_update(
            cloud,
            name="new name",
            endpoint=cloud.endpoint,
            login=USER,
            password="wrong-one",
            options={"enforce_quiesce": True},
        )
    assert wrong.value.kind == "auth"
    assert raw_cloud_row(cloud) == before
    assert cloud.name == "vcenter" and not cloud.enforce_quiesce  # the object too
    # A new endpoint is checked: nothing answers there.
    with running_vcsim() as (host, port):
        gone = f"{host}:{port}"
    with pytest.raises(CloudCheckFailed) as unreachable:
        cloud_update(cloud, name="vcenter", endpoint=gone, login=USER)
    assert unreachable.value.kind == "unreachable" and gone in unreachable.value.message
    assert raw_cloud_row(cloud) == before


@pytest.mark.vsphere
def test_a_moved_endpoint_and_a_changed_pin_are_checked(customer, vcsim):
    cloud = vmware_cloud(customer, vcsim)
    checked_at = cloud.checked_at
    with running_vcsim(user=USER, password=PASSWORD) as (host, port):
        moved = f"{host}:{port}"  # vcsim always serves the same certificate
        cloud_update(cloud, name=cloud.name, endpoint=moved, login=USER)
        cloud = stored(cloud)
        assert cloud.endpoint == moved and cloud.checked_at > checked_at
        wrong_pin = ":".join(["00"] * 32)
        with pytest.raises(CloudCheckFailed) as mismatch:
            cloud_update(
                cloud, name=cloud.name, endpoint=moved, login=USER, tls_fingerprint=wrong_pin
            )
        assert mismatch.value.kind == "tls" and mismatch.value.fingerprint == vcsim[1]
    assert stored(cloud).tls_fingerprint == vcsim[1]


# --- cloud_test ---------------------------------------------------------------------------


@pytest.mark.vsphere
def test_test_connection_records_each_outcome(customer):
    with running_vcsim(user=USER, password=PASSWORD) as (host, port):
        endpoint = f"{host}:{port}"
        cloud = vmware_cloud(customer, (endpoint, fingerprint_of(endpoint)))
        result = cloud_test(cloud)
        assert result.ok and result.product.startswith("VMware")
    result = cloud_test(cloud)  # the simulator is gone
    assert not result.ok and "Cannot reach" in result.message
    cloud = stored(cloud)
    assert cloud.check_ok is False and "Cannot reach" in cloud.check_message
    assert cloud.product.startswith("VMware")  # what was learned last time stays


def test_ovirt_cloud_is_checked_at_its_discovery_level(customer):
    with running_engine(password=PASSWORD) as engine:
        cloud = cloud_create(
            customer,
            platform="ovirt",
            name="zvirt",
            endpoint=engine.url,
            login="admin@internal",
            password=PASSWORD,
            options={"discovery_level": "host"},
        )
        assert cloud.check_ok and cloud.inventory["scopes"][0]["kind"] == "host"
        checked_at = cloud.checked_at
        cloud_update(
            cloud,
            name="zvirt",
            endpoint=engine.url,
            login="admin@internal",
            options={"discovery_level": "datacenter"},
        )
        cloud = stored(cloud)
        assert cloud.checked_at > checked_at and cloud.discovery_level == "datacenter"
        assert {scope["kind"] for scope in cloud.inventory["scopes"]} == {"datacenter"}
        with pytest.raises(CloudCheckFailed) as wrong:
            cloud_update(
                cloud, name="zvirt", endpoint=engine.url, login="admin@internal", password="x"
            )
        assert wrong.value.kind == "auth"
        assert cloud_password(stored(cloud)) == PASSWORD
        with pytest.raises(ValidationError):
            cloud_update(
                cloud,
                name="zvirt",
                endpoint=engine.url,
                login="admin@internal",
                options={"enforce_quiesce": True},  # a VMware option on oVirt
            )


# --- cloud_delete -------------------------------------------------------------------------


def test_delete_is_refused_while_agents_use_the_cloud(customer):
    cloud = make_cloud(customer)
    agent = enroll(customer, platform="vmware", cloud=cloud).agent
    with pytest.raises(ValidationError) as refused:
        cloud_delete(cloud)
    assert "used by 1 agent" in refused.value.messages[0]
    assert Cloud.objects.for_customer(customer).filter(pk=cloud.pk).exists()
    agent_delete(agent)
    cloud_delete(cloud)
    assert not Cloud.objects.for_customer(customer).exists()


def test_delete_takes_the_clouds_download_links_along(customer):
    cloud = make_cloud(customer)
    new = make_link(customer, platform="vmware", cloud=cloud)
    cloud_delete(cloud)
    assert not Cloud.objects.for_customer(customer).exists()
    assert not type(new.link).objects.for_customer(customer).filter(pk=new.link.pk).exists()
