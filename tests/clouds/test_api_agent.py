"""heartbeat/, inventory/ and events/ over the API: happy paths, 400s that change nothing."""

import pytest
from django.test import override_settings

from clouds.models import AgentEvent, AgentStatus
from protection.models import Machine, MachineStatus
from protection.services.jobs import job_cancel, job_start_for_agent
from tests.factories import MachineFactory

from .conftest import API, error_of, post, protected_machine

# -- heartbeat ---------------------------------------------------------------------------


@override_settings(AGENT_HEARTBEAT_SECONDS=21)
def test_heartbeat(api, agent):
    response = post(api, "heartbeat/", {"version": "2.0", "hostname": "proxy-1"})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "agent_id": agent.pk,
        "display_id": agent.display_id,
        "status": "online",
        "debug_logging": False,
        "heartbeat_seconds": 21,
        "cancel_jobs": [],
    }
    agent.refresh_from_db()
    assert (agent.status, agent.version, agent.hostname) == (AgentStatus.ONLINE, "2.0", "proxy-1")


def test_heartbeat_carries_job_progress_and_cancellations(api, agent, customer):
    running = job_start_for_agent(customer, agent, protected_machine(agent))
    body = {
        "version": "1",
        "hostname": "h",
        "job": {"id": running.pk, "bytes_done": 3, "bytes_total": 4, "phase": "reading"},
    }
    assert post(api, "heartbeat/", body).json()["cancel_jobs"] == []
    running.refresh_from_db()
    assert (running.bytes_done, running.bytes_total, running.phase) == (3, 4, "reading")
    job_cancel(customer, running)
    assert post(api, "heartbeat/", body).json()["cancel_jobs"] == [running.pk]


def test_heartbeat_reports_debug_logging(api, agent):
    agent.debug_logging = True
    agent.save()
    assert post(api, "heartbeat/", {"version": "1", "hostname": "h"}).json()["debug_logging"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "v" * 65, "hostname": "h"}, "version"),
        ({"version": "1", "hostname": 5}, "hostname"),
        ({"version": "1", "hostname": "h", "vm_uuid": "u" * 65}, "vm_uuid"),
        ({"version": "1", "hostname": "h", "vm_uuid": 42}, "vm_uuid"),
    ],
)
def test_bad_heartbeat_is_400(api, agent, body, field):
    error = error_of(post(api, "heartbeat/", body), 400)
    assert field in error["details"]
    agent.refresh_from_db()
    assert agent.status == AgentStatus.PENDING and agent.vm_uuid == ""


# -- inventory ---------------------------------------------------------------------------


def test_inventory_upserts_and_answers_the_machines(api, agent, group):
    report = {
        "machines": [
            {
                "external_id": "4c4c4544-0042",
                "name": "web-07",
                "os_name": "Debian 12",
                "ip_addresses": ["192.0.2.7"],
                "cpus": 4,
                "ram_mb": 4096,
                "disks": [{"key": "vda", "label": "root", "size_bytes": 1 << 30}],
            }
        ]
    }
    response = post(api, "inventory/", report)
    assert response.status_code == 200, response.content
    machine = Machine.objects.for_customer(agent.customer).get(external_id="4c4c4544-0042")
    assert response.json() == {
        "machines": [
            {
                "id": machine.pk,
                "external_id": "4c4c4544-0042",
                "name": "web-07",
                "status": "unprotected",
                "disks": [{"key": "vda", "size_bytes": 1 << 30}],
            }
        ]
    }
    assert (machine.group, machine.agent) == (group, agent)
    report["machines"][0]["disks"][0]["size_bytes"] = 2 << 30
    again = post(api, "inventory/", report).json()["machines"][0]
    assert again["id"] == machine.pk and again["disks"] == [{"key": "vda", "size_bytes": 2 << 30}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "machines"),
        ({"machines": {}}, "machines"),
        ({"machines": [{"external_id": "x", "disks": []}]}, "machines[0].name"),
        (
            {
                "machines": [
                    {"external_id": "x", "name": "n", "disks": [{"key": "a", "size_bytes": "1"}]}
                ]
            },
            "machines[0].disks[0].size_bytes",
        ),
    ],
)
def test_bad_inventory_is_400_and_changes_nothing(api, customer, body, field):
    error = error_of(post(api, "inventory/", body), 400)
    assert field in error["details"], error
    assert not Machine.objects.for_customer(customer).exists()


def test_inventory_cannot_reach_another_customer(api, other_customer):
    theirs = MachineFactory(customer=other_customer, platform="linux", external_id="same", name="x")
    body = {"machines": [{"external_id": "same", "name": "stolen", "disks": []}]}
    mine = post(api, "inventory/", body).json()["machines"][0]
    assert mine["id"] != theirs.pk
    theirs.refresh_from_db()
    assert theirs.name == "x" and theirs.status == MachineStatus.UNPROTECTED


# -- events ------------------------------------------------------------------------------


def test_events(api, agent, customer):
    body = {
        "events": [
            {"level": "warning", "message": "slow disk", "occurred_at": "2026-03-01T10:00:00Z"},
            {"level": "debug", "message": "x", "occurred_at": "2026-03-01T10:00:01Z"},
        ]
    }
    response = post(api, "events/", body)
    assert response.status_code == 201 and response.json() == {"accepted": 2}
    levels = sorted(AgentEvent.objects.for_customer(customer).values_list("level", flat=True))
    assert levels == ["debug", "warning"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "events"),
        (
            {"events": [{"level": "loud", "message": "x", "occurred_at": "2026-03-01T10:00:00Z"}]},
            "events[0].level",
        ),
        ({"events": [{"message": "x", "occurred_at": "noon"}]}, "events[0].occurred_at"),
        ({"events": [{"message": "x", "occurred_at": "2026-03-01T10:00:00Z"}] * 501}, "events"),
    ],
)
def test_bad_events_are_400_and_store_nothing(api, customer, body, field):
    error = error_of(post(api, "events/", body), 400)
    assert field in error["details"]
    assert not AgentEvent.objects.for_customer(customer).exists()


def test_events_cannot_name_another_customers_job(api, customer, other_enrolled):
    theirs = job_start_for_agent(
        other_enrolled.agent.customer, other_enrolled.agent, protected_machine(other_enrolled.agent)
    )
    event = {"message": "x", "occurred_at": "2026-03-01T10:00:00Z", "job": theirs.pk}
    error = error_of(post(api, "events/", {"events": [event]}), 400)
    assert error["details"]["events[0].job"] == [f"No job {theirs.pk} of this agent."]
    assert not AgentEvent.objects.all_customers().exists()


def test_get_is_not_allowed(api):
    assert api.get(API + "heartbeat/").status_code == 405
