"""The machine page in a real browser: Replicate now, the progress bar advancing while the
job runs (polled by app.js, no page reload), the status turning In sync when the job
succeeds, and Cancel."""

import pytest
from playwright.sync_api import expect

from clouds.models import AgentStatus
from protection.models import JobState, JobTrigger, MachineStatus, ReplicationJob
from protection.services.jobs import job_finish, job_progress, job_queue, job_take_next
from tests.factories import MachineFactory
from tests.job_support import commit_snapshot, make_agent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MiB = 1024**2


def test_replicate_watch_progress_and_cancel(page, login, operator_user, customer):
    agent = make_agent(customer, status=AgentStatus.ONLINE)
    machine = MachineFactory(
        customer=customer, name="db-01", status=MachineStatus.PROTECTED, agent=agent
    )
    page.on("dialog", lambda dialog: dialog.accept())  # the Cancel confirmation
    login(operator_user)
    page.goto(f"/c/{customer.slug}/machines/{machine.pk}/")
    badge = page.locator("h1 [data-machine-status]")
    expect(badge).to_have_text("Protected")
    expect(page.get_by_test_id("jobs-empty")).to_be_visible()

    page.get_by_test_id("replicate-now").click()
    expect(page.locator(".messages")).to_contain_text("Replication of db-01 queued")
    job = ReplicationJob.objects.for_customer(customer).get(machine=machine)
    assert (job.state, job.trigger) == (JobState.QUEUED, JobTrigger.MANUAL)
    expect(page.get_by_test_id("job-state")).to_have_text("Queued")
    expect(page.get_by_test_id("replicate-now")).to_be_hidden()
    expect(page.get_by_test_id("cancel-job")).to_be_visible()

    # From here on the page must not reload: a marker on window survives only if it doesn't.
    page.evaluate("window.__sameDocument = 'yes'")
    percent = page.locator('[data-job="percent"]')
    bar = page.get_by_test_id("job-progress")

    job = job_take_next(customer, agent)
    job_progress(
        job,
        phase="reading disk-1",
        bytes_total=400 * MiB,
        bytes_done=100 * MiB,
        bytes_read=100 * MiB,
        bytes_sent=20 * MiB,
        new_chunks=80,
    )
    expect(percent).to_have_text("25")
    expect(bar).to_have_attribute("aria-valuenow", "25")
    expect(page.get_by_test_id("job-state")).to_have_text("Running")
    expect(page.locator('[data-job="phase"]')).to_have_text("reading disk-1")
    expect(page.locator('[data-job="sent"]')).to_have_text("20.0\xa0MB")
    expect(page.locator('[data-job="new_chunks"]')).to_have_text("80")
    expect(badge).to_have_text("Initial sync")

    job_progress(job, phase="uploading", bytes_done=300 * MiB, bytes_read=300 * MiB)
    expect(percent).to_have_text("75")
    expect(bar).to_have_attribute("aria-valuenow", "75")
    expect(page.locator('[data-job="phase"]')).to_have_text("uploading")
    width = page.evaluate("document.querySelector('[data-job=bar] span').style.width")
    assert width == "75%"

    snapshot = commit_snapshot(customer, job)
    job_finish(
        job, succeeded=True, snapshot_ids=[snapshot.pk], bytes_done=400 * MiB, bytes_sent=90 * MiB
    )
    expect(badge).to_have_text("In sync")
    expect(badge).to_have_class("badge status-in_sync")
    expect(page.get_by_test_id("job-state")).to_have_text("Succeeded")
    expect(percent).to_have_text("100")
    expect(page.locator('[data-machine-field="last_replicated"]')).not_to_have_text("never")
    expect(page.get_by_test_id("cancel-job")).to_be_hidden()
    expect(page.get_by_test_id("replicate-now")).to_be_visible()
    assert page.evaluate("window.__sameDocument") == "yes"

    # Replicate now again, then cancel the queued job from the page.
    page.get_by_test_id("replicate-now").click()
    expect(page.locator(".messages")).to_contain_text("queued")
    second = ReplicationJob.objects.for_customer(customer).filter(machine=machine).first()
    assert second.pk != job.pk and second.state == JobState.QUEUED
    page.get_by_test_id("cancel-job").click()
    expect(page.locator(".messages")).to_contain_text(f"Job {second.pk} of db-01 was cancelled")
    second.refresh_from_db()
    assert second.state == JobState.CANCELLED
    expect(badge).to_have_text("In sync")
    rows = page.get_by_test_id("job-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Cancelled")
    expect(rows.nth(1)).to_contain_text("1 snapshot")


def test_a_failed_job_shows_its_error_without_reload(page, login, viewer_user, customer):
    agent = make_agent(customer, status=AgentStatus.ONLINE)
    machine = MachineFactory(
        customer=customer, name="web-02", status=MachineStatus.PROTECTED, agent=agent
    )
    job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    job = job_take_next(customer, agent)
    login(viewer_user)
    page.goto(f"/c/{customer.slug}/machines/{machine.pk}/")
    expect(page.get_by_test_id("job-state")).to_have_text("Running")
    expect(page.get_by_test_id("replicate-now")).to_have_count(0)  # viewers: no buttons
    page.evaluate("window.__sameDocument = 'yes'")
    job_finish(job, succeeded=False, error="Cannot read /dev/sdb: I/O error")
    badge = page.locator("h1 [data-machine-status]")
    expect(badge).to_have_text("Error")
    expect(page.get_by_test_id("job-error")).to_have_text("Cannot read /dev/sdb: I/O error")
    expect(page.get_by_test_id("status-message")).to_have_text("Cannot read /dev/sdb: I/O error")
    assert page.evaluate("window.__sameDocument") == "yes"


def test_a_job_the_schedule_starts_appears_on_an_open_page_without_reload(
    page, login, viewer_user, customer
):
    agent = make_agent(customer, status=AgentStatus.ONLINE)
    machine = MachineFactory(
        customer=customer, name="web-07", status=MachineStatus.PROTECTED, agent=agent
    )
    login(viewer_user)
    page.goto(f"/c/{customer.slug}/machines/{machine.pk}/")
    expect(page.get_by_test_id("jobs-empty")).to_be_visible()
    page.evaluate("window.__sameDocument = 'yes'")

    job = job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    job = job_take_next(customer, agent)
    job_progress(job, phase="reading data", bytes_total=100 * MiB, bytes_done=40 * MiB)
    # The idle page polls every 10 s: the running job shows up, then its progress.
    expect(page.get_by_test_id("job-state")).to_have_text("Running", timeout=25_000)
    expect(page.locator('[data-job="percent"]')).to_have_text("40")
    expect(page.locator("h1 [data-machine-status]")).to_have_text("Initial sync")
    assert page.evaluate("window.__sameDocument") == "yes"
