"""What the pages show of a point in time: its consistency in the snapshot list, and on a
VMware machine's page the CBT state, the last change id's age, the cloud's power actions
and thresholds, and the last job's warnings. Another customer's machine stays a 404."""

from django.urls import reverse

from clouds.models import Cloud
from protection.models import JobState, Machine, Platform, ReplicationJob
from tests.factories import DiskFactory, MachineFactory, enroll_agent

from .conftest import Agent, split

DATA = b"vm disk" * 40000


def _vmware_machine(customer):
    cloud = Cloud.objects.create(
        customer=customer,
        name="vc-prod",
        platform="vmware",
        endpoint="vcenter.example:443",
        on_replication_start="power_off",
        on_replication_finish="power_on",
        disk_storage_threshold_percent=20,
        free_space_threshold_percent=0,
        enforce_quiesce=True,
    )
    enrolled = enroll_agent(customer, platform="vmware", hostname="appliance", cloud=cloud)
    machine = MachineFactory(customer=customer, platform=Platform.VMWARE, agent=enrolled.agent)
    disk = DiskFactory(machine=machine, customer=customer, key="2000", size_bytes=len(DATA))
    return machine, disk, Agent(enrolled.text, enrolled.agent)


def _replicate(agent, disk, **extra):
    session = agent.open(disk, **extra).json()
    agent.upload(session["id"], split(DATA))
    return agent.commit_full(session["id"], DATA).json()


def test_snapshot_list_shows_consistency(operator_client, customer):
    machine, disk, agent = _vmware_machine(customer)
    _replicate(agent, disk, consistency="application", change_id="52 aa/1")
    _replicate(agent, disk, consistency="crash", change_id="52 aa/2")
    _replicate(agent, disk)
    page = operator_client.get(reverse("storage:machine_snapshots", args=["acme", machine.pk]))
    cells = page.content.decode()
    assert page.status_code == 200
    assert cells.count("Application-consistent") == 1 and cells.count("Crash-consistent") == 1
    assert "Not recorded" in cells


def test_vmware_machine_page_shows_cbt_power_thresholds_and_warnings(operator_client, customer):
    machine, disk, agent = _vmware_machine(customer)
    url = reverse("protection:machine_detail", args=["acme", machine.pk])
    before = operator_client.get(url).content.decode()
    assert 'data-testid="source-platform"' in before
    assert "Not known yet" in before and "None yet" in before
    snapshot = _replicate(agent, disk, consistency="application", change_id="52 aa 11/7")
    job = ReplicationJob.objects.for_customer(customer).get(pk=snapshot["job"])
    ReplicationJob.objects.for_customer(customer).filter(pk=job.pk).update(
        state=JobState.SUCCEEDED, warnings=["snapshot acura-job-1 could not be removed"]
    )
    Machine.objects.for_customer(customer).filter(pk=machine.pk).update(change_tracking=True)
    page = operator_client.get(url).content.decode()
    assert "52 aa 11/7" in page
    assert '<span class="badge status-in_sync">On</span>' in page
    assert "Power off" in page and "Power on" in page
    assert "≥ 20 % of the VM's disk size" in page
    assert "Enforced" in page
    assert "snapshot acura-job-1 could not be removed" in page


def test_the_machine_page_shows_the_last_jobs_log_and_not_another_jobs(operator_client, customer):
    from django.utils import timezone

    from clouds.models import AgentEvent

    machine, disk, agent = _vmware_machine(customer)
    snapshot = _replicate(agent, disk, consistency="crash", change_id="1/1")
    job = ReplicationJob.objects.for_customer(customer).get(pk=snapshot["job"])
    ReplicationJob.objects.for_customer(customer).filter(pk=job.pk).update(state=JobState.SUCCEEDED)
    now = timezone.now()
    for message in ("storage thresholds passed: LocalDS_0 has 90 % free", "snapshot removed"):
        AgentEvent.objects.create(
            customer=customer, agent=agent.agent, job=job, message=message, occurred_at=now
        )
    AgentEvent.objects.create(
        customer=customer, agent=agent.agent, message="heartbeat noise", occurred_at=now
    )
    page = operator_client.get(reverse("protection:machine_detail", args=["acme", machine.pk]))
    body = page.content.decode()
    assert body.count('data-testid="job-log-line"') == 2
    assert "LocalDS_0 has 90 % free" in body and "heartbeat noise" not in body


def test_a_linux_machine_has_no_vmware_panel(operator_client, machine):
    page = operator_client.get(reverse("protection:machine_detail", args=["acme", machine.pk]))
    assert page.status_code == 200 and 'data-testid="source-platform"' not in page.content.decode()


def test_another_customers_vmware_machine_is_a_404(operator_client, other_customer):
    machine, _, _ = _vmware_machine(other_customer)
    for url in (
        reverse("protection:machine_detail", args=["acme", machine.pk]),
        reverse("storage:machine_snapshots", args=["acme", machine.pk]),
    ):
        assert operator_client.get(url).status_code == 404


def test_the_job_tables_show_the_consistency_of_each_jobs_snapshots(operator_client, customer):
    machine, disk, agent = _vmware_machine(customer)
    jobs = ReplicationJob.objects.for_customer(customer)

    def replicated(**extra):  # each in a job of its own
        snapshot = _replicate(agent, disk, **extra)
        jobs.filter(pk=snapshot["job"]).update(state=JobState.SUCCEEDED)
        return snapshot

    quiesced = replicated(consistency="application", change_id="52 aa/1")
    crashed = replicated(consistency="crash", change_id="52 aa/2")
    unknown = replicated()
    assert len({quiesced["job"], crashed["job"], unknown["job"]}) == 3
    for url in (
        reverse("protection:machine_detail", args=["acme", machine.pk]),
        reverse("protection:job_list", args=["acme"]),
    ):
        body = operator_client.get(url).content.decode()
        rows = {
            job: body.split(f'data-job-row="{job}"', 1)[1].split("</tr>", 1)[0]
            for job in (quiesced["job"], crashed["job"], unknown["job"])
        }
        assert 'data-testid="job-consistency">Application-consistent' in rows[quiesced["job"]]
        assert 'data-testid="job-consistency">Crash-consistent' in rows[crashed["job"]]
        assert "job-consistency" not in rows[unknown["job"]]


def _ovirt_machine(customer):
    cloud = Cloud.objects.create(
        customer=customer, name="engine", platform="ovirt", endpoint="engine.example",
        discovery_level="cluster",
    )  # fmt: skip
    enrolled = enroll_agent(customer, platform="ovirt", hostname="appliance", cloud=cloud)
    machine = MachineFactory(customer=customer, platform=Platform.OVIRT, agent=enrolled.agent)
    disk = DiskFactory(machine=machine, customer=customer, key="d1", size_bytes=len(DATA))
    return machine, disk, Agent(enrolled.text, enrolled.agent)


def test_ovirt_machine_page_shows_the_base_snapshot_kept_in_ovirt(operator_client, customer):
    machine, disk, agent = _ovirt_machine(customer)
    url = reverse("protection:machine_detail", args=["acme", machine.pk])
    before = operator_client.get(url).content.decode()
    assert "oVirt replication" in before and "None yet: the first replication takes it" in before
    _replicate(agent, disk, consistency="crash", change_id="snap-0a1b2c")
    page = operator_client.get(url).content.decode()
    assert "<code>snap-0a1b2c</code>" in page and "Do not delete it in oVirt" in page
    assert 'data-testid="ovirt-consistency">Crash-consistent' in page
    assert "Cluster" in page and "VMware replication" not in page
