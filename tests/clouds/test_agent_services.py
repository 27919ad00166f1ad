"""What agents report (heartbeat, inventory, events) and what the portal does to an agent."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from clouds.models import Agent, AgentCredential, AgentEvent, AgentStatus
from clouds.services import (
    MAX_EVENTS,
    agent_delete,
    agent_events_record,
    agent_heartbeat,
    agent_inventory,
    agent_set_debug_logging,
)
from protection.models import Disk, JobState, Machine, MachineStatus, ReplicationJob
from protection.services.jobs import job_cancel, job_start_for_agent
from tests.factories import MachineFactory

from .conftest import enroll, protected_machine


def _machine(external_id="m-1", name="web-01", **extra):
    return {
        "external_id": external_id,
        "name": name,
        "disks": [{"key": "sda", "label": "root", "size_bytes": 10 << 30}],
        **extra,
    }


# -- heartbeat ---------------------------------------------------------------------------


def test_heartbeat_marks_online_and_records_version(agent):
    answer = agent_heartbeat(agent, version="1.2.3", hostname="new-name")
    agent.refresh_from_db()
    assert agent.status == AgentStatus.ONLINE and agent.last_seen_at is not None
    assert (agent.version, agent.hostname) == ("1.2.3", "new-name")
    assert answer.cancel_jobs == []


def test_heartbeat_applies_the_running_job_progress(agent):
    job = job_start_for_agent(agent.customer, agent, protected_machine(agent))
    agent_heartbeat(
        agent,
        version="1",
        hostname="h",
        job={"id": job.pk, "bytes_done": 5, "bytes_total": 10, "phase": "reading sda"},
    )
    job.refresh_from_db()
    assert (job.bytes_done, job.bytes_total, job.phase) == (5, 10, "reading sda")


def test_heartbeat_ignores_jobs_of_others_and_lists_cancelled_ones(agent, customer):
    colleague = enroll(customer, hostname="other").agent
    theirs = job_start_for_agent(customer, colleague, protected_machine(colleague))
    mine = job_start_for_agent(customer, agent, protected_machine(agent))
    job_cancel(customer, mine)
    answer = agent_heartbeat(
        agent, version="1", hostname="h", job={"id": theirs.pk, "bytes_done": 9}
    )
    theirs.refresh_from_db()
    assert theirs.bytes_done == 0
    assert answer.cancel_jobs == [mine.pk]


def test_heartbeat_with_bad_counters_is_refused(agent):
    job = job_start_for_agent(agent.customer, agent, protected_machine(agent))
    with pytest.raises(ValidationError, match="bytes_done"):
        agent_heartbeat(agent, version="1", hostname="h", job={"id": job.pk, "bytes_done": -1})


@pytest.mark.parametrize(
    "kwargs",
    [{"version": "v" * 65}, {"hostname": "h" * 256}, {"version": 3}, {"job": [1]}],
)
def test_bad_heartbeat_changes_nothing(agent, kwargs):
    with pytest.raises(ValidationError):
        agent_heartbeat(agent, **{"version": "1", "hostname": "h", **kwargs})
    agent.refresh_from_db()
    assert agent.status == AgentStatus.PENDING


# -- inventory ---------------------------------------------------------------------------


def test_new_machines_land_in_the_agent_group_unprotected(agent, group):
    machines = agent_inventory(
        agent,
        [
            _machine(
                os_name="Debian 12", ip_addresses=["10.0.0.5", "fe80::1"], cpus=4, ram_mb=8192
            ),
            {"external_id": "m-2", "name": "db-01", "disks": []},
        ],
    )
    web, db = machines
    assert (web.group, web.status, web.agent, web.platform) == (
        group,
        MachineStatus.UNPROTECTED,
        agent,
        "linux",
    )
    assert (web.os_name, web.ip_addresses, web.cpus, web.ram_mb) == (
        "Debian 12",
        ["10.0.0.5", "fe80::1"],
        4,
        8192,
    )
    assert [(d.key, d.label, d.size_bytes) for d in web.disks.all()] == [("sda", "root", 10 << 30)]
    assert db.name == "db-01" and not db.disks.exists()


def test_windows_agents_report_machines_as_discovered(customer):
    agent = enroll(customer, platform="windows").agent
    (machine,) = agent_inventory(agent, [_machine()])
    assert machine.status == MachineStatus.DISCOVERED and machine.group is None


def test_a_second_report_updates_and_keeps_what_it_does_not_mention(
    agent, customer, other_customer
):
    (first,) = agent_inventory(agent, [_machine(os_name="Debian 12", cpus=2)])
    Machine.objects.for_customer(customer).filter(pk=first.pk).update(
        status=MachineStatus.IN_SYNC, group=None
    )
    report = _machine(name="web-01-renamed", cpus=8)
    report["disks"] = [
        {"key": "sdb", "size_bytes": 1 << 30},
        {"key": "sda", "size_bytes": 20 << 30},
    ]
    (again,) = agent_inventory(agent, [report])
    assert again.pk == first.pk
    assert (again.name, again.cpus, again.os_name, again.status, again.group) == (
        "web-01-renamed",
        8,
        "Debian 12",  # not sent: kept
        MachineStatus.IN_SYNC,  # protection is the portal's, not the agent's
        None,
    )
    disks = {d.key: (d.label, d.size_bytes) for d in again.disks.all()}
    assert disks == {"sda": ("root", 20 << 30), "sdb": ("", 1 << 30)}
    # No longer reported: kept (its snapshots stay restorable).
    agent_inventory(agent, [{"external_id": "m-1", "name": "web", "disks": []}])
    assert Disk.objects.for_customer(customer).count() == 2


def test_inventory_never_touches_another_customer(agent, customer, other_customer):
    theirs = MachineFactory(customer=other_customer, platform="linux", external_id="m-1", name="x")
    (mine,) = agent_inventory(agent, [_machine()])
    assert mine.pk != theirs.pk and mine.customer == customer
    theirs.refresh_from_db()
    assert (theirs.name, theirs.agent) == ("x", None)


def test_machines_of_other_platforms_are_separate(agent, customer):
    vm = MachineFactory(customer=customer, platform="vmware", external_id="m-1", name="vm")
    (mine,) = agent_inventory(agent, [_machine()])
    assert mine.pk != vm.pk


def test_a_machine_moves_to_the_agent_that_reports_it(agent, customer):
    (machine,) = agent_inventory(agent, [_machine()])
    successor = enroll(customer, hostname="reinstalled").agent
    (again,) = agent_inventory(successor, [_machine()])
    assert again.pk == machine.pk and again.agent == successor


@pytest.mark.parametrize(
    ("report", "where"),
    [
        ("nope", "machines"),
        (["nope"], "machines[0]"),
        ([{"name": "x", "disks": []}], "machines[0].external_id"),
        ([_machine(external_id="  ")], "machines[0].external_id"),
        ([_machine(external_id="e" * 256)], "machines[0].external_id"),
        ([_machine(name=None)], "machines[0].name"),
        ([_machine(os_name=5)], "machines[0].os_name"),
        ([_machine(ip_addresses=["10.0.0.300"])], "machines[0].ip_addresses[0]"),
        ([_machine(ip_addresses="10.0.0.1")], "machines[0].ip_addresses"),
        ([_machine(cpus=-1)], "machines[0].cpus"),
        ([_machine(cpus=True)], "machines[0].cpus"),
        ([_machine(ram_mb="lots")], "machines[0].ram_mb"),
        ([_machine(disks="sda")], "machines[0].disks"),
        ([_machine(disks=[{"key": "sda"}])], "machines[0].disks[0].size_bytes"),
        ([_machine(disks=[{"key": "", "size_bytes": 1}])], "machines[0].disks[0].key"),
        ([_machine(disks=[{"key": "a", "size_bytes": 2**63}])], "machines[0].disks[0].size_bytes"),
        (
            [_machine(disks=[{"key": "a", "size_bytes": 1}, {"key": "a", "size_bytes": 1}])],
            "machines[0].disks[1].key",
        ),
        ([_machine(), _machine(name="dup")], "machines[1].external_id"),
        ([_machine()] * 5001, "machines"),
    ],
)
def test_a_bad_report_names_the_problem_and_changes_nothing(agent, customer, report, where):
    agent_inventory(agent, [_machine(external_id="before")])
    with pytest.raises(ValidationError) as info:
        agent_inventory(agent, report)
    assert where in info.value.message_dict, info.value.message_dict
    assert list(Machine.objects.for_customer(customer).values_list("external_id", flat=True)) == [
        "before"
    ]


def test_one_bad_machine_stores_none_of_the_report(agent, customer):
    with pytest.raises(ValidationError) as info:
        agent_inventory(agent, [_machine(), _machine(external_id="m-2", cpus="many")])
    assert list(info.value.message_dict) == ["machines[1].cpus"]
    assert not Machine.objects.for_customer(customer).exists()


def test_bad_report_example_message(agent):
    with pytest.raises(ValidationError) as info:
        agent_inventory(agent, [_machine(disks=[{"key": "sda", "size_bytes": -5}])])
    assert info.value.message_dict == {
        "machines[0].disks[0].size_bytes": [f"A whole number from 0 to {2**63 - 1}."]
    }


# -- events ------------------------------------------------------------------------------


def test_events_are_stored_with_their_job(agent, customer):
    job = job_start_for_agent(customer, agent, protected_machine(agent))
    count = agent_events_record(
        agent,
        [
            {"level": "info", "message": "started", "occurred_at": "2026-01-02T03:04:05Z"},
            {
                "level": "error",
                "message": "x" * 9000,
                "occurred_at": "2026-01-02T03:04:06+01:00",
                "job": job.pk,
            },
        ],
    )
    assert count == 2
    # 03:04:06+01:00 is 02:04:06 UTC: earlier than the first line.
    failed, started = AgentEvent.objects.for_customer(customer).order_by("occurred_at")
    assert failed.occurred_at == datetime(2026, 1, 2, 2, 4, 6, tzinfo=UTC)
    assert started.occurred_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert failed.job == job and len(failed.message) == 8000 and failed.message.endswith("…")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"level": "fatal"}, "events[1].level"),
        ({"message": ""}, "events[1].message"),
        ({"message": 5}, "events[1].message"),
        ({"occurred_at": "yesterday"}, "events[1].occurred_at"),
        ({"occurred_at": None}, "events[1].occurred_at"),
        ({"job": 999999}, "events[1].job"),
        ({"job": "1"}, "events[1].job"),
    ],
)
def test_bad_events_store_none(agent, customer, event, field):
    good = {"level": "info", "message": "ok", "occurred_at": "2026-01-01T00:00:00Z"}
    with pytest.raises(ValidationError) as info:
        agent_events_record(agent, [good, {**good, **event}])
    assert field in info.value.message_dict
    assert not AgentEvent.objects.for_customer(customer).exists()


def test_events_of_another_agents_job_are_refused(agent, customer):
    colleague = enroll(customer, hostname="b").agent
    theirs = job_start_for_agent(customer, colleague, protected_machine(colleague))
    event = {"message": "x", "occurred_at": "2026-01-01T00:00:00Z", "job": theirs.pk}
    with pytest.raises(ValidationError, match="No job"):
        agent_events_record(agent, [event])


def test_at_most_500_events_per_call(agent, customer):
    event = {"message": "x", "occurred_at": "2026-01-01T00:00:00Z"}
    assert agent_events_record(agent, [event] * MAX_EVENTS) == MAX_EVENTS
    with pytest.raises(ValidationError, match="At most 500"):
        agent_events_record(agent, [event] * (MAX_EVENTS + 1))
    assert AgentEvent.objects.for_customer(customer).count() == MAX_EVENTS


# -- portal-side -------------------------------------------------------------------------


def test_debug_logging_switch(agent):
    assert agent_set_debug_logging(agent, True).debug_logging is True
    agent.refresh_from_db()
    assert agent.debug_logging is True
    assert agent_set_debug_logging(agent, False).debug_logging is False


def test_delete_is_refused_while_a_job_is_active(agent, customer):
    machine = protected_machine(agent)
    job = job_start_for_agent(customer, agent, machine)
    with pytest.raises(ValidationError, match=f"running job {job.pk}"):
        agent_delete(agent)
    assert Agent.objects.for_customer(customer).filter(pk=agent.pk).exists()
    job_cancel(customer, job)
    agent_delete(agent)
    assert not Agent.objects.for_customer(customer).exists()
    assert not AgentCredential.objects.for_customer(customer).exists()
    machine.refresh_from_db()
    job.refresh_from_db()
    assert machine.agent is None and job.agent is None and job.state == JobState.CANCELLED
    assert ReplicationJob.objects.for_customer(customer).count() == 1
