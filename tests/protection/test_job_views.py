"""Replication jobs in the portal: Replicate now, Cancel, the JSON progress endpoint, the
machine page's job panel and history, RPO lag in the list, the job list, the dashboard
figures and the provider admin's job pages."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clouds.models import AgentStatus
from protection.models import JobState, JobTrigger, Machine, MachineStatus, ReplicationJob
from protection.services.jobs import job_cancel, job_progress, job_queue, job_take_next
from protection.services.policy import policy_update
from tenants.models import Role
from tests.factories import MachineFactory, MachineGroupFactory
from tests.job_support import make_agent, run_job

OPERATORS = [Role.OPERATOR, Role.ADMIN]


@pytest.fixture
def agent(customer):
    return make_agent(customer, status=AgentStatus.ONLINE)


@pytest.fixture
def protected(customer, group, agent):
    return MachineFactory(
        customer=customer, group=group, name="db-01", status=MachineStatus.PROTECTED, agent=agent
    )


def detail_url(machine, slug="acme"):
    return reverse("protection:machine_detail", args=[slug, machine.pk])


def replicate_url(machine, slug="acme"):
    return reverse("protection:machine_replicate", args=[slug, machine.pk])


def status_url(machine, slug="acme"):
    return reverse("protection:machine_job_status", args=[slug, machine.pk])


def cancel_url(job, slug="acme"):
    return reverse("protection:job_cancel", args=[slug, job.pk])


def jobs_of(customer, machine):
    return list(ReplicationJob.objects.for_customer(customer).filter(machine=machine))


def texts(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def reload(machine):
    return Machine.objects.all_customers().get(pk=machine.pk)


# --- Replicate now ------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", OPERATORS, indirect=True)
def test_replicate_now_queues_a_manual_job(role_client, customer, protected, agent):
    response = role_client.post(replicate_url(protected), follow=True)
    assert response.redirect_chain[-1][0] == detail_url(protected)
    [job] = jobs_of(customer, protected)
    assert (job.state, job.trigger, job.agent_id) == (JobState.QUEUED, JobTrigger.MANUAL, agent.pk)
    assert job.requested_by == response.wsgi_request.user
    assert f"Replication of db-01 queued (job {job.pk})" in texts(response)[0]
    assert 'data-job-active="1"' in response.content.decode()


def test_viewer_cannot_replicate(viewer_client, customer, protected):
    assert viewer_client.post(replicate_url(protected)).status_code == 403
    assert jobs_of(customer, protected) == []


def test_replicate_now_is_post_only(operator_client, customer, protected):
    assert operator_client.get(replicate_url(protected)).status_code == 405
    assert jobs_of(customer, protected) == []


def test_replicate_an_unprotected_machine_says_so(operator_client, customer, machine, agent):
    Machine.objects.for_customer(customer).filter(pk=machine.pk).update(agent=agent)
    response = operator_client.post(replicate_url(machine), follow=True)
    assert texts(response) == [
        "Machine web-01 is not protected: start protection in the portal first."
    ]
    assert jobs_of(customer, machine) == []


def test_replicate_without_an_agent_says_so(operator_client, customer, protected):
    Machine.objects.for_customer(customer).filter(pk=protected.pk).update(agent=None)
    response = operator_client.post(replicate_url(protected), follow=True)
    assert texts(response) == [
        "No agent replicates machine db-01 yet: install an agent that reports it."
    ]
    assert jobs_of(customer, protected) == []


def test_replicate_while_a_job_runs_says_so(operator_client, customer, protected, agent):
    job = job_queue(customer, protected, trigger=JobTrigger.SCHEDULE)
    job_take_next(customer, agent)
    response = operator_client.post(replicate_url(protected), follow=True)
    assert texts(response) == [
        f"Machine db-01 already has an active replication job (job {job.pk}, running)."
    ]
    assert [j.pk for j in jobs_of(customer, protected)] == [job.pk]


def test_replicate_for_an_offline_agent_warns(operator_client, customer, protected, agent):
    type(agent).objects.for_customer(customer).filter(pk=agent.pk).update(
        status=AgentStatus.OFFLINE
    )
    response = operator_client.post(replicate_url(protected), follow=True)
    assert "is offline: the job waits until it is back" in texts(response)[0]
    assert len(jobs_of(customer, protected)) == 1


def test_replicate_ignores_a_foreign_next(operator_client, protected):
    response = operator_client.post(replicate_url(protected), {"next": "https://evil.example/"})
    assert response["Location"] == detail_url(protected)


# --- Cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", OPERATORS, indirect=True)
def test_cancel_a_running_job(role_client, customer, protected, agent):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    job_take_next(customer, agent)
    assert reload(protected).status == MachineStatus.INITIAL_SYNC
    response = role_client.post(cancel_url(job), follow=True)
    job.refresh_from_db()
    assert (job.state, job.cancel_requested) == (JobState.CANCELLED, True)
    assert texts(response) == [f"Job {job.pk} of db-01 was cancelled."]
    assert reload(protected).status == MachineStatus.PROTECTED


def test_viewer_cannot_cancel(viewer_client, customer, protected):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    assert viewer_client.post(cancel_url(job)).status_code == 403
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


def test_cancel_an_ended_job_changes_nothing(operator_client, customer, protected, agent):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    job = run_job(customer, agent)
    before = ReplicationJob.objects.for_customer(customer).filter(pk=job.pk).values().get()
    response = operator_client.post(cancel_url(job), follow=True)
    assert texts(response) == [f"Job {job.pk} is succeeded."]
    assert ReplicationJob.objects.for_customer(customer).filter(pk=job.pk).values().get() == before


def test_a_committing_job_cannot_be_cancelled(operator_client, customer, protected, agent):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    job = job_take_next(customer, agent)
    job_progress(job, phase="committing")
    response = operator_client.post(cancel_url(job), follow=True)
    assert "can no longer be cancelled" in texts(response)[0]
    job.refresh_from_db()
    assert job.state == JobState.COMMITTING


def test_cancel_returns_to_a_local_next(operator_client, customer, protected):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    jobs_page = reverse("protection:job_list", args=["acme"]) + "?state=active"
    response = operator_client.post(cancel_url(job), {"next": jobs_page})
    assert response["Location"] == jobs_page


# --- The JSON progress endpoint -----------------------------------------------------------


def test_status_without_any_job(viewer_client, protected):
    data = viewer_client.get(status_url(protected)).json()
    assert data["job"] is None
    assert data["machine"]["status"] == "protected"
    assert data["machine"]["last_replicated"] == "never"


def test_status_of_a_running_job(viewer_client, customer, protected, agent):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    job = job_take_next(customer, agent)
    ReplicationJob.objects.for_customer(customer).filter(pk=job.pk).update(
        started_at=timezone.now() - timedelta(seconds=10)
    )
    job_progress(
        job,
        phase="reading disk-1",
        bytes_total=4 * 1024**3,
        bytes_done=1024**3,
        bytes_read=1024**3,
        bytes_sent=100 * 1024**2,
        new_chunks=42,
    )
    response = viewer_client.get(status_url(protected))
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["machine"]["status"] == "initial_sync"
    assert data["machine"]["status_display"] == "Initial sync"
    payload = data["job"]
    assert payload["id"] == job.pk
    assert (payload["state"], payload["active"], payload["cancellable"]) == ("running", True, True)
    assert payload["percent"] == 25
    assert payload["phase"] == "reading disk-1"
    assert (payload["bytes_done"], payload["bytes_total"]) == (1024**3, 4 * 1024**3)
    assert (payload["bytes_read"], payload["bytes_sent"], payload["new_chunks"]) == (
        1024**3,
        100 * 1024**2,
        42,
    )
    assert 90 * 1024**2 < payload["speed_bps"] < 115 * 1024**2  # ~1 GiB in ~10 s
    assert payload["text"]["done"] == "1.0\xa0GB"
    assert payload["text"]["total"] == "4.0\xa0GB"
    assert payload["text"]["sent"] == "100.0\xa0MB"
    assert payload["text"]["speed"].endswith("MB/s")


def test_status_after_the_job_succeeded(viewer_client, customer, protected, agent):
    job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    job = run_job(customer, agent)
    data = viewer_client.get(status_url(protected)).json()
    assert data["job"]["id"] == job.pk
    assert (data["job"]["state"], data["job"]["active"]) == ("succeeded", False)
    assert data["job"]["percent"] == 100
    assert data["machine"]["status"] == "in_sync"
    assert data["machine"]["last_replicated"] != "never"
    assert data["machine"]["rpo_late"] is False


def test_status_after_the_job_failed(viewer_client, customer, protected, agent):
    job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    run_job(customer, agent, succeed=False, error="Cannot read /dev/sdb: I/O error")
    data = viewer_client.get(status_url(protected)).json()
    assert data["job"]["state"] == "failed"
    assert data["job"]["error_message"] == "Cannot read /dev/sdb: I/O error"
    assert data["machine"]["status"] == "error"
    assert data["machine"]["status_message"] == "Cannot read /dev/sdb: I/O error"


def test_status_of_another_customers_machine_is_404(stranger_client, protected):
    assert stranger_client.get(status_url(protected)).status_code == 404
    assert stranger_client.get(status_url(protected, slug="globex")).status_code == 404


# --- The machine page -----------------------------------------------------------------------


def test_machine_page_shows_the_running_job(viewer_client, customer, protected, agent):
    job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    job = job_take_next(customer, agent)
    job_progress(job, phase="uploading", bytes_total=200, bytes_done=50, bytes_sent=7)
    content = viewer_client.get(detail_url(protected)).content.decode()
    assert f'data-job-poll="{status_url(protected)}"' in content
    assert 'data-job-active="1"' in content
    assert 'aria-valuenow="25"' in content
    assert '<td data-job="phase">uploading</td>' in content
    assert agent.display_id in content
    assert "replicate-now" not in content  # viewers get no buttons
    assert "cancel-job" not in content


def test_operator_gets_cancel_for_the_active_job(operator_client, customer, protected):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    content = operator_client.get(detail_url(protected)).content.decode()
    assert f'action="{cancel_url(job)}" data-job-cancel' in content
    assert "data-job-replicate hidden" in content


def test_operator_gets_replicate_now_when_idle(operator_client, protected):
    content = operator_client.get(detail_url(protected)).content.decode()
    assert f'action="{replicate_url(protected)}" data-job-replicate>' in content
    assert 'data-job-active=""' in content


def test_machine_page_shows_the_job_history(viewer_client, customer, protected, agent):
    job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    ok = run_job(customer, agent)
    job_queue(customer, protected, trigger=JobTrigger.SCHEDULE)
    bad = run_job(customer, agent, succeed=False, error="Agent lost the disk")
    response = viewer_client.get(detail_url(protected))
    content = response.content.decode()
    assert [j.pk for j in response.context["jobs_page"]] == [bad.pk, ok.pk]
    assert "Agent lost the disk" in content
    snapshots = reverse("storage:machine_snapshots", args=["acme", protected.pk])
    assert f'href="{snapshots}" data-testid="job-snapshots">1 snapshot<' in content
    assert content.count('data-testid="job-row"') == 2


def test_job_history_is_paginated(viewer_client, customer, protected):
    for _ in range(25):
        job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
        job_cancel(customer, job)
    first = viewer_client.get(detail_url(protected))
    assert first.context["jobs_page"].paginator.num_pages == 2
    assert len(first.context["jobs_page"].object_list) == 20
    second = viewer_client.get(detail_url(protected) + "?jobs_page=2")
    assert len(second.context["jobs_page"].object_list) == 5


def test_machine_page_query_count_does_not_grow_with_history(
    viewer_client, customer, protected, agent
):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert viewer_client.get(detail_url(protected)).status_code == 200
        return len(queries)

    job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    run_job(customer, agent)
    few = count()
    for _ in range(5):
        job_queue(customer, protected, trigger=JobTrigger.MANUAL)
        run_job(customer, agent)
    assert count() == few


# --- RPO lag in the machine list ------------------------------------------------------------


def list_url(slug="acme"):
    return reverse("protection:machine_list", args=[slug])


def test_rpo_lag_is_red_beyond_twice_the_effective_interval(viewer_client, customer, agent):
    now = timezone.now()
    fast = MachineGroupFactory(customer=customer, name="Fast")
    policy_update(customer, fast, {"interval_minutes": 15})
    fresh = MachineFactory(
        customer=customer,
        name="a-fresh",
        status=MachineStatus.IN_SYNC,
        agent=agent,
        last_replicated_at=now - timedelta(minutes=90),  # default interval 60: not late
    )
    late = MachineFactory(
        customer=customer,
        group=fast,
        name="b-late",
        status=MachineStatus.IN_SYNC,
        last_replicated_at=now - timedelta(minutes=40),  # group interval 15: late
    )
    never = MachineFactory(customer=customer, name="c-never", status=MachineStatus.PROTECTED)
    response = viewer_client.get(list_url())
    rows = {m.name: m for m in response.context["machines"]}
    assert (rows["a-fresh"].rpo_late, rows["a-fresh"].effective_interval) == (False, 60)
    assert (rows["b-late"].rpo_late, rows["b-late"].effective_interval) == (True, 15)
    assert rows["c-never"].rpo_late is False
    content = response.content.decode()
    assert '<td data-testid="rpo-lag">1\xa0hour, 30\xa0minutes</td>' in content
    assert (
        'class="late" title="More than twice the replication interval (15 minutes)">40' in content
    )
    assert agent.display_id in content
    assert fresh.pk and late.pk and never.pk


def test_machine_level_interval_wins(viewer_client, customer, group):
    machine = MachineFactory(
        customer=customer,
        group=group,
        name="own",
        status=MachineStatus.IN_SYNC,
        last_replicated_at=timezone.now() - timedelta(hours=3),
    )
    policy_update(customer, group, {"interval_minutes": 30})
    policy_update(customer, machine, {"interval_minutes": 120})
    [row] = viewer_client.get(list_url()).context["machines"]
    assert (row.effective_interval, row.rpo_late) == (120, False)


def test_machine_list_query_count_is_constant(viewer_client, customer, group):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert viewer_client.get(list_url()).status_code == 200
        return len(queries)

    def add(n, offset):
        for i in range(n):
            agent = make_agent(customer, hostname=f"h{offset + i}", status=AgentStatus.ONLINE)
            grp = MachineGroupFactory(customer=customer)
            policy_update(customer, grp, {"interval_minutes": 30 + i})
            machine = MachineFactory(
                customer=customer,
                group=grp,
                status=MachineStatus.PROTECTED,
                agent=agent,
                last_replicated_at=timezone.now(),
            )
            policy_update(customer, machine, {"interval_minutes": 90})
            job_queue(customer, machine, trigger=JobTrigger.MANUAL)

    add(2, 0)
    few = count()
    add(12, 100)
    assert count() == few


def test_list_shows_the_active_jobs_percent(viewer_client, customer, protected, agent):
    job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    job = job_take_next(customer, agent)
    job_progress(job, bytes_total=1000, bytes_done=420)
    content = viewer_client.get(list_url()).content.decode()
    assert f'title="Job {job.pk} running">42%</span>' in content


# --- The customer's job list ---------------------------------------------------------------


def job_list(client, query=""):
    return client.get(reverse("protection:job_list", args=["acme"]) + query)


def test_job_list_filters_by_state(viewer_client, customer, protected, agent, other_customer):
    job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    done = run_job(customer, agent)
    queued = job_queue(customer, protected, trigger=JobTrigger.SCHEDULE)
    foreign_agent = make_agent(other_customer, status=AgentStatus.ONLINE)
    foreign = MachineFactory(
        customer=other_customer, status=MachineStatus.PROTECTED, agent=foreign_agent
    )
    job_queue(other_customer, foreign, trigger=JobTrigger.MANUAL)

    def ids(query=""):
        return [j.pk for j in job_list(viewer_client, query).context["jobs"]]

    assert ids() == [queued.pk, done.pk]
    assert ids("?state=active") == [queued.pk]
    assert ids("?state=succeeded") == [done.pk]
    assert ids("?state=failed") == []
    assert ids("?state=bogus") == [queued.pk, done.pk]  # an unknown filter is dropped
    assert b"jobs-no-match" in job_list(viewer_client, "?state=failed").content


def test_job_list_empty_state(viewer_client):
    assert b'data-testid="jobs-empty"' in job_list(viewer_client).content


def test_job_list_paginates(viewer_client, customer, protected):
    for _ in range(55):
        job_cancel(customer, job_queue(customer, protected, trigger=JobTrigger.MANUAL))
    response = job_list(viewer_client, "?page=2")
    assert len(response.context["jobs"]) == 5
    assert "Page 2 of 2 · 55 jobs" in response.content.decode()


def test_job_list_cancel_buttons_need_the_operator_role(
    viewer_client, operator_client, customer, protected
):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    assert cancel_url(job).encode() not in job_list(viewer_client).content
    assert cancel_url(job).encode() in job_list(operator_client).content


# --- Dashboard ------------------------------------------------------------------------------


def test_dashboard_shows_agents_and_jobs(viewer_client, customer, protected, agent):
    make_agent(customer, hostname="gone", status=AgentStatus.OFFLINE)
    make_agent(customer, hostname="new")  # pending
    job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    run_job(customer, agent, succeed=False, error="Network unreachable")
    job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    job_take_next(customer, agent)
    response = viewer_client.get(reverse("acura_portal:dashboard", args=["acme"]))
    assert response.context["agents"] == {"total": 3, "online": 1, "offline": 1, "pending": 1}
    jobs = response.context["jobs"]
    assert (jobs["running"], jobs["queued"], jobs["failed"]) == (1, 0, 1)
    content = response.content.decode()
    assert "Agents online" in content and "Failed in the last 24 h" in content
    assert "Network unreachable" in content


# --- Provider admin -------------------------------------------------------------------------


@pytest.fixture
def superuser_client(db):
    user = get_user_model().objects.create_superuser("root-admin", "r@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_admin_lists_jobs_of_every_customer_read_only(
    superuser_client, customer, protected, other_customer
):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    foreign_agent = make_agent(other_customer, status=AgentStatus.ONLINE)
    foreign = MachineFactory(
        customer=other_customer, status=MachineStatus.PROTECTED, agent=foreign_agent
    )
    other = job_queue(other_customer, foreign, trigger=JobTrigger.SCHEDULE)
    changelist = reverse("admin:protection_replicationjob_changelist")
    response = superuser_client.get(changelist)
    assert response.status_code == 200
    assert {j.pk for j in response.context["cl"].result_list} == {job.pk, other.pk}
    filtered = superuser_client.get(changelist + "?trigger__exact=schedule")
    assert [j.pk for j in filtered.context["cl"].result_list] == [other.pk]
    assert superuser_client.get(reverse("admin:protection_replicationjob_add")).status_code == 403
    change = reverse("admin:protection_replicationjob_change", args=[job.pk])
    assert superuser_client.get(change).status_code == 200  # view only
    superuser_client.post(change, {"state": "succeeded"})
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


def test_admin_cancel_action_goes_through_job_cancel(superuser_client, customer, protected, agent):
    job = job_queue(customer, protected, trigger=JobTrigger.MANUAL)
    job_take_next(customer, agent)
    other_machine = MachineFactory(customer=customer, status=MachineStatus.PROTECTED, agent=agent)
    job_queue(customer, other_machine, trigger=JobTrigger.MANUAL)
    committing = job_take_next(customer, agent)
    job_progress(committing, phase="committing")
    response = superuser_client.post(
        reverse("admin:protection_replicationjob_changelist"),
        {"action": "cancel_jobs", "_selected_action": [job.pk, committing.pk]},
        follow=True,
    )
    job.refresh_from_db()
    committing.refresh_from_db()
    assert (job.state, job.cancel_requested) == (JobState.CANCELLED, True)
    assert committing.state == JobState.COMMITTING
    messages = texts(response)
    assert "1 job(s) cancelled." in messages
    assert any("can no longer be cancelled" in m for m in messages)
    assert reload(protected).status == MachineStatus.PROTECTED
