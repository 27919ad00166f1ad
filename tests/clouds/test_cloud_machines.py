"""The portal discovers a cloud's VMs for its appliance agents: each appliance is placed by
its own VM's SMBIOS UUID (reported in its heartbeat) in the host or cluster it stands in, and
the VMs there — not the appliance itself — become its machines, in its group, Unprotected.
Against the real vSphere simulator and the in-test oVirt engine."""

import pytest
from django.urls import reverse

from clouds.connectors import ConnectorError, tls, vmware
from clouds.models import Agent
from clouds.services import agent_heartbeat
from clouds.services.cloud_machines import cloud_machines_sync
from clouds.services.clouds import cloud_create
from protection.models import Machine, MachineStatus
from tests.factories import MachineGroupFactory
from tests.ovirt_support import running_engine
from tests.vsphere_support import running_vcsim

from .conftest import enroll


def vcsim_fingerprint(host, port) -> str:
    """vcsim's self-signed certificate, as the wizard offers to trust it."""
    with pytest.raises(ConnectorError) as refused:
        tls.probe(host, port, timeout=5)
    return refused.value.fingerprint


def vcsim_cloud(customer, host, port, cluster_level):
    return cloud_create(
        customer,
        platform="vmware",
        name=f"vcenter-{cluster_level}",
        endpoint=f"{host}:{port}",
        login="acura",
        password="pw",
        tls_fingerprint=vcsim_fingerprint(host, port),
        options={"cluster_level_discover": cluster_level},
    )


def appliance(customer, cloud, group, vm_uuid="", hostname="appliance"):
    agent = enroll(customer, platform=cloud.platform, cloud=cloud, group=group).agent
    answer = agent_heartbeat(agent, version="1", hostname=hostname, vm_uuid=vm_uuid)
    assert answer.discovery_due  # never discovered yet: the API queues the discovery
    return answer.agent


def machines_of(agent):
    return sorted(
        Machine.objects.for_customer(agent.customer_id)
        .filter(agent=agent)
        .values_list("name", flat=True)
    )


@pytest.mark.vsphere
@pytest.mark.parametrize("cluster_level", [False, True])
def test_vmware_appliances_serve_their_host_or_cluster(customer, cluster_level):
    group = MachineGroupFactory(customer=customer, name="vSphere VMs")
    with running_vcsim(vms=2) as (host, port):
        cloud = vcsim_cloud(customer, host, port, cluster_level)
        tree = vmware.discover(
            f"{host}:{port}", "acura", "pw", cluster_level=cluster_level,
            tls_fingerprint=cloud.tls_fingerprint, timeout=10,
        )  # fmt: skip
        by_name = {vm.name: vm for vm in tree.vms()}
        standalone = appliance(customer, cloud, group, by_name["DC0_H0_VM0"].bios_uuid.upper())
        clustered = appliance(customer, cloud, group, by_name["DC0_C0_RP0_VM0"].bios_uuid)
        lost = appliance(customer, cloud, group, "00000000-0000-0000-0000-00000000dead")
        result = cloud_machines_sync(cloud)
        again = cloud_machines_sync(cloud)  # idempotent
    assert result.ok and again.ok and result.unplaced == [lost.pk]
    assert machines_of(standalone) == ["DC0_H0_VM1"]  # its own VM is not a machine
    cluster_vms = {"DC0_C0_RP0_VM1"}
    if not cluster_level:  # host level: only the VMs on the appliance's own ESXi host
        own_host = next(h for h in tree.hosts() if by_name["DC0_C0_RP0_VM0"] in h.vms)
        cluster_vms = {vm.name for vm in own_host.vms} - {"DC0_C0_RP0_VM0"}
    assert set(machines_of(clustered)) == cluster_vms
    rows = Machine.objects.for_customer(customer).filter(agent__in=[standalone, clustered])
    assert rows.count() == 1 + len(cluster_vms)  # no duplicates after the second run
    for machine in rows:
        assert (machine.group, machine.status, machine.platform) == (
            group,
            MachineStatus.UNPROTECTED,
            "vmware",
        )
        assert machine.disks.get().size_bytes == 1024 * 1024  # vcsim's 1 MiB disks
    standalone.refresh_from_db()
    assert standalone.serves == "host DC0/DC0_H0" and standalone.discovered_at
    lost.refresh_from_db()
    assert lost.serves == "" and "Cannot tell which part of the cloud" in lost.discovery_message
    assert not agent_heartbeat(standalone, version="1", hostname="x").discovery_due


@pytest.mark.vsphere
def test_a_second_appliance_in_the_same_host_is_told_who_serves_it(customer):
    group = MachineGroupFactory(customer=customer)
    with running_vcsim(vms=2) as (host, port):
        cloud = vcsim_cloud(customer, host, port, cluster_level=False)
        first = appliance(customer, cloud, group, hostname="DC0_H0_VM0")  # placed by name
        second = appliance(customer, cloud, group, hostname="dc0_h0_vm1.example.com")
        result = cloud_machines_sync(cloud)
    assert list(result.served) == [first.pk] and result.unplaced == [second.pk]
    second.refresh_from_db()
    assert f"Agent {first.display_id} serves host DC0/DC0_H0" in second.discovery_message
    assert machines_of(first) == []  # both VMs of DC0_H0 are appliances
    assert machines_of(second) == []


def test_a_failed_discovery_changes_no_machine_and_is_reported(customer):
    group = MachineGroupFactory(customer=customer)
    with running_engine(password="secret") as engine:
        cloud = cloud_create(
            customer, platform="ovirt", name="zvirt", endpoint=engine.url,
            login="admin@internal", password="secret", options={"discovery_level": "cloud"},
        )  # fmt: skip
        agent = appliance(customer, cloud, group)  # one scope (the cloud): no UUID needed
        assert cloud_machines_sync(cloud).ok
    before = machines_of(agent)
    assert before  # every VM of the engine
    result = cloud_machines_sync(cloud)  # the engine is gone now
    assert not result.ok and "Cannot reach" in result.message
    agent.refresh_from_db()
    cloud.refresh_from_db()
    assert machines_of(agent) == before and cloud.check_ok is False
    assert agent.discovery_message.startswith("Discovery failed: Cannot reach")


def test_ovirt_appliance_serves_its_cluster(customer):
    group = MachineGroupFactory(customer=customer)
    with running_engine(password="secret") as engine:
        cloud = cloud_create(
            customer, platform="ovirt", name="zvirt", endpoint=engine.url,
            login="admin@internal", password="secret", options={"discovery_level": "cluster"},
        )  # fmt: skip
        vms = engine.model.vms
        own = vms[0]
        agent = appliance(customer, cloud, group, vm_uuid=own["id"])
        result = cloud_machines_sync(cloud)
    assert result.ok and agent.pk in result.served
    agent = Agent.objects.for_customer(customer).get(pk=agent.pk)
    assert agent.serves.startswith("cluster ")
    expected = sorted(
        vm["name"] for vm in vms if vm.get("cluster") == own.get("cluster") and vm is not own
    )
    assert machines_of(agent) == expected


def test_the_agent_page_says_what_an_appliance_serves(customer, viewer_client):
    group = MachineGroupFactory(customer=customer)
    with running_engine(password="secret") as engine:
        cloud = cloud_create(
            customer, platform="ovirt", name="zvirt", endpoint=engine.url,
            login="admin@internal", password="secret", options={"discovery_level": "cloud"},
        )  # fmt: skip
        agent = appliance(customer, cloud, group, vm_uuid="VM-SELF")
        cloud_machines_sync(cloud)
    page = viewer_client.get(reverse("clouds:agent_detail", args=["acme", agent.pk]))
    body = page.content.decode()
    assert 'data-testid="agent-serves"' in body and "cloud " in body
    assert "machines discovered." in body and "vm-self" in body


def test_an_unreadable_password_fails_the_discovery_clearly(customer, settings):
    group = MachineGroupFactory(customer=customer)
    cloud = cloud_create(
        customer, platform="ovirt", name="zvirt", endpoint="https://engine.invalid/ovirt-engine/api",
        login="admin@internal", password="secret", check=False,
    )  # fmt: skip
    agent = appliance(customer, cloud, group)
    settings.SECRET_KEY = "rotated without a fallback " * 3
    result = cloud_machines_sync(cloud)
    assert not result.ok and "Enter the password again" in result.message
    agent.refresh_from_db()
    assert agent.discovery_message.startswith("Discovery failed: A stored password cannot")


def test_a_byte_swapped_smbios_uuid_still_places_the_appliance():
    from clouds.services.cloud_machines import _uuid_forms

    forms = _uuid_forms("4231A7E0-0D6B-45C8-A0B8-1D2E3F405162")
    assert forms == {
        "4231a7e0-0d6b-45c8-a0b8-1d2e3f405162",
        "e0a73142-6b0d-c845-a0b8-1d2e3f405162",
    }
    assert _uuid_forms("vm1") == {"vm1"}  # oVirt ids in the test engine are not UUIDs


@pytest.mark.vsphere
def test_jobs_of_a_served_vm_go_to_its_appliance_never_to_a_second_one(customer):
    """Two appliances in one cluster: the first placed serves its VMs; the second is told who
    serves them and never takes their jobs (``jobs/next/`` is per agent)."""
    from protection.models import JobTrigger
    from protection.services.jobs import job_queue, job_take_next
    from protection.services.machines import machines_start_protection

    group = MachineGroupFactory(customer=customer)
    with running_vcsim(vms=3) as (host, port):
        cloud = vcsim_cloud(customer, host, port, cluster_level=True)
        tree = vmware.discover(
            f"{host}:{port}", "acura", "pw", cluster_level=True,
            tls_fingerprint=cloud.tls_fingerprint, timeout=10,
        )  # fmt: skip
        by_name = {vm.name: vm for vm in tree.vms()}
        first = appliance(customer, cloud, group, by_name["DC0_C0_RP0_VM0"].bios_uuid)
        second = appliance(customer, cloud, group, by_name["DC0_C0_RP0_VM1"].bios_uuid)
        result = cloud_machines_sync(cloud)
    assert list(result.served) == [first.pk] and result.unplaced == [second.pk]
    served = Machine.objects.for_customer(customer).filter(agent=first)
    assert machines_of(first) == ["DC0_C0_RP0_VM2"] and machines_of(second) == []
    machines_start_protection(customer, list(served))
    for machine in served.all():  # fresh rows: now protected
        job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    assert job_take_next(customer, second) is None
    taken = job_take_next(customer, first)
    assert taken is not None and taken.agent_id == first.pk and taken.machine.agent_id == first.pk
