"""The job endpoints: take, start, read, progress, result; only this agent's jobs."""

import pytest

from clouds.services import agent_enroll
from protection.models import (
    JobState,
    JobTrigger,
    MachineStatus,
    ReplicationJob,
    ReplicationPolicy,
)
from protection.services.jobs import job_cancel, job_queue, job_start_for_agent
from tests.factories import MachineFactory
from tests.storage_support import Agent as UploadingAgent

from .conftest import API, client_for, error_of, make_token, post, protected_machine


@pytest.fixture
def machine_(agent):
    return protected_machine(agent, name="app-01")


def _started(agent, machine):
    return job_start_for_agent(agent.customer, agent, machine)


# -- next --------------------------------------------------------------------------------


def test_next_is_204_without_a_queued_job(api):
    response = post(api, "jobs/next/")
    assert response.status_code == 204 and not response.content


def test_next_takes_the_oldest_queued_job(api, agent, customer, machine_):
    ReplicationPolicy.objects.create(customer=customer, bandwidth_limit_mbps=80)
    queued = job_queue(customer, machine_, trigger=JobTrigger.SCHEDULE)
    response = post(api, "jobs/next/")
    assert response.status_code == 200, response.content
    body = response.json()
    queued.refresh_from_db()
    assert queued.state == JobState.RUNNING and queued.started_at is not None
    assert body["id"] == queued.pk and body["state"] == "running"
    assert body["machine"] == {
        "id": machine_.pk,
        "name": "app-01",
        "external_id": machine_.external_id,
    }
    assert body["trigger"] == "schedule" and body["bandwidth_limit_mbps"] == 80
    assert body["disks"] == [
        {"key": "sda", "size_bytes": 1 << 20},
        {"key": "sdb", "size_bytes": 2 << 20},
    ]
    assert body["snapshots"] == [] and body["error_message"] == ""
    assert set(body) >= {
        "created_at",
        "started_at",
        "phase",
        "bytes_done",
        "bytes_total",
        "bytes_read",
        "bytes_sent",
        "new_chunks",
    }
    assert post(api, "jobs/next/").status_code == 204  # taken: nothing left


def test_next_never_takes_another_agents_job(customer, agent, machine_):
    job_queue(customer, machine_, trigger=JobTrigger.MANUAL)
    colleague = agent_enroll(make_token(customer).text, hostname="b", version="1")
    assert post(client_for(colleague.text), "jobs/next/").status_code == 204


def test_unlimited_bandwidth_is_null(api, agent, machine_):
    job = _started(agent, machine_)
    assert api.get(f"{API}jobs/{job.pk}/").json()["bandwidth_limit_mbps"] is None


# -- create ------------------------------------------------------------------------------


def test_create_starts_a_running_agent_job(api, agent, machine_):
    response = post(api, "jobs/", {"machine": machine_.pk})
    assert response.status_code == 201, response.content
    job = ReplicationJob.objects.for_customer(agent.customer).get()
    assert response.json()["id"] == job.pk
    assert (job.state, job.trigger, job.agent) == (JobState.RUNNING, JobTrigger.AGENT, agent)
    machine_.refresh_from_db()
    assert machine_.status == MachineStatus.INITIAL_SYNC


def test_create_while_a_job_is_active_is_409(api, agent, machine_):
    job = _started(agent, machine_)
    error = error_of(post(api, "jobs/", {"machine": machine_.pk}), 409, "already has an active")
    assert error["details"] == {"code": "conflict", "job": job.pk, "state": "running"}
    assert ReplicationJob.objects.for_customer(agent.customer).count() == 1


def test_create_for_an_unprotected_machine_is_409(api, agent, customer):
    machine = MachineFactory(customer=customer, agent=agent, status=MachineStatus.UNPROTECTED)
    error = error_of(post(api, "jobs/", {"machine": machine.pk}), 409, "start protection")
    assert error["details"]["code"] == "not_protected"
    assert not ReplicationJob.objects.for_customer(customer).exists()


def test_create_for_a_machine_that_is_not_this_agents_is_404(api, customer, other_enrolled):
    theirs = protected_machine(other_enrolled.agent)
    colleague = agent_enroll(make_token(customer).text, hostname="b", version="1").agent
    colleagues = protected_machine(colleague)
    unassigned = MachineFactory(customer=customer, status=MachineStatus.PROTECTED)
    for machine in (theirs, colleagues, unassigned):
        error_of(post(api, "jobs/", {"machine": machine.pk}), 404, f"No machine {machine.pk}")
    assert not ReplicationJob.objects.all_customers().exists()


@pytest.mark.parametrize("body", [{}, {"machine": "x"}, {"machine": 0}, {"machine": 2**64}])
def test_create_with_a_bad_machine_is_400(api, body):
    assert "machine" in error_of(post(api, "jobs/", body), 400)["details"]


# -- retrieve ----------------------------------------------------------------------------


def test_retrieve_own_job_only(api, agent, customer, machine_, other_api):
    job = _started(agent, machine_)
    assert api.get(f"{API}jobs/{job.pk}/").json()["id"] == job.pk
    error_of(other_api.get(f"{API}jobs/{job.pk}/"), 404)
    colleague = agent_enroll(make_token(customer).text, hostname="b", version="1")
    error_of(client_for(colleague.text).get(f"{API}jobs/{job.pk}/"), 404)
    for bad in ("abc", str(2**64), "0"):
        assert api.get(f"{API}jobs/{bad}/").status_code == 404


# -- progress ----------------------------------------------------------------------------


def test_progress_records_counters(api, agent, machine_):
    job = _started(agent, machine_)
    counters = {
        "bytes_done": 10,
        "bytes_total": 100,
        "bytes_read": 10,
        "bytes_sent": 4,
        "new_chunks": 1,
    }
    response = post(api, f"jobs/{job.pk}/progress/", {"phase": "reading sda", **counters})
    assert response.status_code == 200 and response.json() == {"cancel": False, "state": "running"}
    job.refresh_from_db()
    assert {k: getattr(job, k) for k in counters} == counters and job.phase == "reading sda"
    response = post(api, f"jobs/{job.pk}/progress/", {"phase": "committing"})
    assert response.json() == {"cancel": False, "state": "committing"}


def test_progress_of_a_cancelled_job_is_409(api, agent, customer, machine_):
    job = _started(agent, machine_)
    job_cancel(customer, job)
    error = error_of(post(api, f"jobs/{job.pk}/progress/", {"bytes_done": 1}), 409, "cancelled")
    assert error["details"]["code"] == "not_running" and error["details"]["state"] == "cancelled"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bytes_done": -1}, "bytes_done"),
        ({"new_chunks": "many"}, "new_chunks"),
        ({"phase": "p" * 65}, "phase"),
    ],
)
def test_bad_progress_is_400_and_changes_nothing(api, agent, machine_, body, field):
    job = _started(agent, machine_)
    assert field in error_of(post(api, f"jobs/{job.pk}/progress/", body), 400)["details"]
    job.refresh_from_db()
    assert (job.bytes_done, job.new_chunks, job.phase) == (0, 0, "")


def test_progress_of_another_customers_job_is_404(api, other_enrolled):
    theirs = _started(other_enrolled.agent, protected_machine(other_enrolled.agent))
    error_of(post(api, f"jobs/{theirs.pk}/progress/", {"bytes_done": 5}), 404)
    theirs.refresh_from_db()
    assert theirs.bytes_done == 0


# -- result ------------------------------------------------------------------------------


def test_succeeded_result_with_the_committed_snapshots(api, agent, enrolled, customer, machine_):
    uploader = UploadingAgent(enrolled.text, agent)
    disk = machine_.disks.get(key="sda")
    snapshot = uploader.replicate(disk, b"data" * 40000)["snapshot"]
    job = uploader.job_for(machine_)
    body = {
        "state": "succeeded",
        "snapshots": [snapshot["id"]],
        "bytes_read": 160000,
        "bytes_sent": 1000,
        "new_chunks": 3,
        "bytes_done": 160000,
        "bytes_total": 160000,
    }
    response = post(api, f"jobs/{job.pk}/result/", body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["state"] == "succeeded" and answer["snapshots"] == [snapshot["id"]]
    assert answer["bytes_sent"] == 1000 and answer["new_chunks"] == 3
    machine_.refresh_from_db()
    assert machine_.status == MachineStatus.IN_SYNC and machine_.last_replicated_at
    again = post(api, f"jobs/{job.pk}/result/", body)
    assert again.status_code == 200 and again.json()["state"] == "succeeded"
    failed = post(api, f"jobs/{job.pk}/result/", {"state": "failed", "error": "late"})
    assert error_of(failed, 409)["details"]["code"] == "not_running"


def test_failed_result(api, agent, machine_):
    job = _started(agent, machine_)
    response = post(api, f"jobs/{job.pk}/result/", {"state": "failed", "error": "disk unreadable"})
    assert response.status_code == 200 and response.json()["error_message"] == "disk unreadable"
    machine_.refresh_from_db()
    assert machine_.status == MachineStatus.ERROR


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"state": "failed"}, "needs an error message"),
        ({"state": "succeeded"}, "names the snapshots"),
        (
            {"state": "succeeded", "snapshots": ["6f1f3c51-7d5f-4b55-9a43-0d3c0d1f0a11"]},
            "were not committed",
        ),
    ],
)
def test_invalid_result_is_400_and_the_job_keeps_running(api, agent, machine_, body, message):
    job = _started(agent, machine_)
    error_of(post(api, f"jobs/{job.pk}/result/", body), 400, message)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "cancelled"}, "state"),
        ({}, "state"),
        ({"state": "succeeded", "snapshots": ["x"]}, "snapshots"),
    ],
)
def test_malformed_result_is_400(api, agent, machine_, body, field):
    job = _started(agent, machine_)
    assert field in error_of(post(api, f"jobs/{job.pk}/result/", body), 400)["details"]


def test_result_of_a_cancelled_job_is_409(api, agent, customer, machine_):
    job = _started(agent, machine_)
    job_cancel(customer, job)
    error_of(post(api, f"jobs/{job.pk}/result/", {"state": "failed", "error": "x"}), 409)
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def test_another_customers_agent_cannot_finish_the_job(agent, machine_, other_api):
    job = _started(agent, machine_)
    error_of(post(other_api, f"jobs/{job.pk}/result/", {"state": "failed", "error": "x"}), 404)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING


def test_result_warnings_and_change_tracking_are_kept(api, agent, enrolled, machine_):
    uploader = UploadingAgent(enrolled.text, agent)
    snapshot = uploader.replicate(machine_.disks.get(key="sda"), b"data" * 40000)["snapshot"]
    job = uploader.job_for(machine_)
    warning = f"the VMware snapshot acura-job-{job.pk} could not be removed: busy"
    body = {
        "state": "succeeded",
        "snapshots": [snapshot["id"]],
        "warnings": [warning],
        "change_tracking": True,
    }
    response = post(api, f"jobs/{job.pk}/result/", body)
    assert response.status_code == 200, response.content
    assert response.json()["warnings"] == [warning]
    job.refresh_from_db()
    machine_.refresh_from_db()
    assert job.warnings == [warning] and machine_.change_tracking is True


def test_a_failed_result_keeps_its_warnings(api, agent, machine_):
    job = _started(agent, machine_)
    body = {"state": "failed", "error": "quiesce failed", "warnings": ["VM left powered on"]}
    response = post(api, f"jobs/{job.pk}/result/", body)
    assert response.status_code == 200 and response.json()["warnings"] == ["VM left powered on"]
    machine_.refresh_from_db()
    assert machine_.change_tracking is None  # not reported: stays unknown


@pytest.mark.parametrize(
    "extra",
    [
        {"warnings": "one string"},
        {"warnings": ["x" * 1001]},
        {"warnings": ["w"] * 21},
        {"warnings": [""]},
        {"change_tracking": "maybe"},
    ],
)
def test_bad_warnings_or_change_tracking_are_400_and_change_nothing(api, agent, machine_, extra):
    job = _started(agent, machine_)
    response = post(api, f"jobs/{job.pk}/result/", {"state": "failed", "error": "x", **extra})
    assert response.status_code == 400, response.content
    job.refresh_from_db()
    machine_.refresh_from_db()
    assert job.state == JobState.RUNNING and job.warnings == []
    assert machine_.change_tracking is None
