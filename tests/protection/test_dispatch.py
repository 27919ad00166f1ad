"""Beat's dispatcher: which machines are due, next_run_at, idempotency and its query cost."""

import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clouds.models import Agent, AgentStatus
from protection.models import (
    JobState,
    JobTrigger,
    Machine,
    MachineStatus,
    ReplicationJob,
    ReplicationPolicy,
)
from protection.services.dispatch import dispatch_due
from protection.tasks import dispatch_replications
from tests.factories import CustomerFactory, MachineFactory, MachineGroupFactory

# 2025-01-15 is a Wednesday; Europe/Berlin is UTC+1 in January.
WED_NOON_UTC = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def make_agent(customer, **fields):
    fields = {"status": AgentStatus.ONLINE, "last_seen_at": timezone.now(), **fields}
    return Agent.objects.create(customer=customer, platform="vmware", **fields)


@pytest.fixture
def agent(customer):
    return make_agent(customer)


def protected(customer, agent, **fields):
    fields = {"status": MachineStatus.PROTECTED, "agent": agent, **fields}
    return MachineFactory(customer=customer, **fields)


@pytest.fixture
def machine(customer, agent):
    return protected(customer, agent)


def policy(customer, *, group=None, machine=None, **values):
    return ReplicationPolicy.objects.create(
        customer=customer, group=group, machine=machine, **values
    )


def window(customer, start, end, days=None, **where):
    return policy(
        customer,
        window_enabled=True,
        window_start=start,
        window_end=end,
        window_days=days,
        **where,
    )


def jobs_of(machine):
    return list(ReplicationJob.objects.for_customer(machine.customer_id).filter(machine=machine))


def past_job(machine, created_at, state=JobState.SUCCEEDED):
    return ReplicationJob.objects.create(
        customer=machine.customer,
        machine=machine,
        agent=machine.agent,
        trigger=JobTrigger.SCHEDULE,
        state=state,
        created_at=created_at,
    )


def next_run(machine):
    return Machine.objects.for_customer(machine.customer_id).get(pk=machine.pk).next_run_at


# --- Due ------------------------------------------------------------------------------------


def test_a_newly_protected_machine_replicates_at_once(customer, agent, machine):
    now = timezone.now()
    summary = dispatch_due(now)
    assert (summary["queued"], summary["machines"], summary["errors"]) == (1, 1, [])
    [job] = jobs_of(machine)
    assert (job.state, job.trigger, job.agent_id) == (JobState.QUEUED, "schedule", agent.pk)
    # The next run is one interval (the default hour) after this job.
    assert next_run(machine) == max(now, job.created_at) + timedelta(minutes=60)


@pytest.mark.parametrize(
    "status",
    [
        MachineStatus.PROTECTED,
        MachineStatus.INITIAL_SYNC,
        MachineStatus.IN_SYNC,
        MachineStatus.REPLICATING,
        MachineStatus.ERROR,
    ],
)
def test_every_protected_status_is_scheduled(customer, agent, status):
    machine = protected(customer, agent, status=status)
    assert dispatch_due()["queued"] == 1
    assert len(jobs_of(machine)) == 1


def test_interval_counts_from_the_last_job_whatever_its_outcome(customer, agent):
    policy(customer, interval_minutes=120)
    now = timezone.now()
    recent = protected(customer, agent)
    past_job(recent, now - timedelta(minutes=119), state=JobState.FAILED)
    old = protected(customer, agent)
    past_job(old, now - timedelta(minutes=300))
    past_job(old, now - timedelta(minutes=121), state=JobState.CANCELLED)
    summary = dispatch_due(now)
    assert (summary["queued"], summary["not_due"]) == (1, 1)
    assert len(jobs_of(recent)) == 1 and len(jobs_of(old)) == 3
    assert next_run(recent) == now + timedelta(minutes=1)


# --- Not due, for every reason ----------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [MachineStatus.UNPROTECTED, MachineStatus.DISCOVERED, MachineStatus.PAUSED]
)
def test_unprotected_and_paused_machines_are_not_scheduled(customer, agent, status):
    machine = protected(customer, agent, status=status, next_run_at=timezone.now())
    summary = dispatch_due()
    assert summary["queued"] == 0
    assert jobs_of(machine) == []
    if status == MachineStatus.PAUSED:
        assert summary["paused"] == 1
        assert next_run(machine) is None  # a paused machine has no next run
    else:
        assert summary["machines"] == 0  # not even looked at


def test_disabled_at_any_level_and_enabled_below_it(customer, agent):
    group = MachineGroupFactory(customer=customer)
    policy(customer, group=group, enabled=False)
    off = protected(customer, agent, group=group, next_run_at=timezone.now())
    back_on = protected(customer, agent, group=group)
    policy(customer, machine=back_on, enabled=True)
    elsewhere = protected(customer, agent)
    summary = dispatch_due()
    assert (summary["queued"], summary["disabled"]) == (2, 1)
    assert jobs_of(off) == [] and next_run(off) is None
    assert len(jobs_of(back_on)) == 1 and len(jobs_of(elsewhere)) == 1


def test_settings_inherit_per_machine_in_the_bulk_merge(customer, agent):
    now = timezone.now()
    policy(customer, interval_minutes=30)
    group = MachineGroupFactory(customer=customer)
    policy(customer, group=group, interval_minutes=240)
    by_customer = protected(customer, agent, group=None)
    by_group = protected(customer, agent, group=group)
    by_machine = protected(customer, agent, group=group)
    policy(customer, machine=by_machine, interval_minutes=10)
    for m in (by_customer, by_group, by_machine):
        past_job(m, now - timedelta(minutes=20))
    summary = dispatch_due(now)
    assert summary["queued"] == 1
    assert len(jobs_of(by_machine)) == 2
    assert next_run(by_customer) == now + timedelta(minutes=10)
    assert next_run(by_group) == now + timedelta(minutes=220)


@pytest.mark.parametrize(
    ("status", "seen_ago"),
    [
        (AgentStatus.OFFLINE, timedelta(0)),
        (AgentStatus.PENDING, None),
        # Still marked online, but its heartbeats stopped (the offline check has not run).
        (AgentStatus.ONLINE, timedelta(seconds=91)),
    ],
)
def test_an_unavailable_agent_gets_no_job(customer, status, seen_ago):
    now = timezone.now()
    seen = None if seen_ago is None else now - seen_ago
    machine = protected(customer, make_agent(customer, status=status, last_seen_at=seen))
    summary = dispatch_due(now)
    assert (summary["queued"], summary["agent_offline"]) == (0, 1)
    assert jobs_of(machine) == []
    assert next_run(machine) == now  # due: it runs as soon as the agent is back


def test_a_machine_without_agent_gets_no_job(customer):
    machine = MachineFactory(customer=customer, status=MachineStatus.PROTECTED, agent=None)
    summary = dispatch_due()
    assert (summary["queued"], summary["no_agent"]) == (0, 1)
    assert next_run(machine) is None


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING, JobState.COMMITTING])
def test_a_machine_with_an_active_job_is_busy(customer, agent, machine, state):
    now = timezone.now()
    past_job(machine, now - timedelta(hours=3), state=state)
    summary = dispatch_due(now)
    assert (summary["queued"], summary["busy"], summary["conflicts"]) == (0, 1, 0)
    assert len(jobs_of(machine)) == 1


def test_inactive_customers_are_skipped(customer, agent, machine):
    customer.is_active = False
    customer.save()
    assert dispatch_due()["customers"] == 0
    assert jobs_of(machine) == []


# --- Windows, in the customer's time zone -------------------------------------------------------


def test_inside_the_window_it_runs(customer, agent, machine):
    window(customer, time(12, 30), time(14, 0))  # Berlin: 12:00 UTC is 13:00
    assert dispatch_due(WED_NOON_UTC)["queued"] == 1


def test_outside_the_window_the_next_run_is_its_opening(customer, agent, machine):
    window(customer, time(22, 0), time(6, 0))
    summary = dispatch_due(WED_NOON_UTC)
    assert (summary["queued"], summary["not_due"]) == (0, 1)
    assert next_run(machine) == datetime(2025, 1, 15, 21, 0, tzinfo=UTC)  # 22:00 Berlin


def test_a_window_across_midnight_belongs_to_the_day_it_starts(customer, agent):
    window(customer, time(22, 0), time(6, 0), days=[3])  # Wednesday nights only
    thursday_2am = protected(customer, agent)
    assert dispatch_due(datetime(2025, 1, 16, 1, 0, tzinfo=UTC))["queued"] == 1  # Thu 02:00
    assert len(jobs_of(thursday_2am)) == 1

    wednesday_2am = protected(customer, agent)
    summary = dispatch_due(datetime(2025, 1, 15, 1, 0, tzinfo=UTC), customers=[customer])
    assert jobs_of(wednesday_2am) == []  # Tuesday's night is not allowed
    assert summary["not_due"] >= 1
    assert next_run(wednesday_2am) == datetime(2025, 1, 15, 21, 0, tzinfo=UTC)


def test_weekdays_are_the_customers_not_utcs(agent):
    customer = CustomerFactory(time_zone="Pacific/Auckland")  # UTC+13 in January
    agent = make_agent(customer)
    # Tuesday 20:00 UTC is Wednesday 09:00 in Auckland.
    tuesday_utc = datetime(2025, 1, 14, 20, 0, tzinfo=UTC)
    wednesday_only = protected(customer, agent)
    window(customer, time(8, 0), time(12, 0), days=[3], machine=wednesday_only)
    tuesday_only = protected(customer, agent)
    window(customer, time(8, 0), time(12, 0), days=[2], machine=tuesday_only)
    summary = dispatch_due(tuesday_utc)
    assert summary["queued"] == 1
    assert len(jobs_of(wednesday_only)) == 1 and jobs_of(tuesday_only) == []
    # Next Tuesday 08:00 in Auckland.
    assert next_run(tuesday_only) == datetime(2025, 1, 20, 19, 0, tzinfo=UTC)


def test_next_run_follows_daylight_saving_time(customer, agent, machine):
    window(customer, time(3, 0), time(4, 0))
    # Berlin moves to summer time on 2025-03-30 at 02:00: 03:00 that day is 01:00 UTC.
    dispatch_due(datetime(2025, 3, 29, 12, 0, tzinfo=UTC))
    assert next_run(machine) == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)


def test_an_interval_ending_outside_the_window_waits_for_the_next_opening(customer, agent, machine):
    window(customer, time(9, 0), time(17, 0), days=[1, 2, 3, 4, 5])  # office hours
    past_job(machine, datetime(2025, 1, 17, 15, 30, tzinfo=UTC))  # Friday 16:30 Berlin
    dispatch_due(datetime(2025, 1, 17, 15, 45, tzinfo=UTC))
    # The hour elapses Friday 17:30, after the window: Monday 09:00 Berlin.
    assert next_run(machine) == datetime(2025, 1, 20, 8, 0, tzinfo=UTC)


# --- Idempotency and races ------------------------------------------------------------------


def test_a_second_pass_in_the_same_minute_creates_nothing(customer, agent):
    machines = [protected(customer, agent) for _ in range(3)]
    now = timezone.now()
    assert dispatch_due(now)["queued"] == 3
    again = dispatch_due(now + timedelta(seconds=20))
    assert (again["queued"], again["not_due"]) == (0, 3)
    # Even when the jobs already ended: the interval has not elapsed.
    ReplicationJob.objects.for_customer(customer).update(state=JobState.SUCCEEDED)
    third = dispatch_due(now + timedelta(seconds=40))
    assert (third["queued"], third["not_due"]) == (0, 3)
    assert all(len(jobs_of(m)) == 1 for m in machines)


@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_queue_each_machine_once(customer, agent):
    machines = [protected(customer, agent) for _ in range(6)]
    barrier = threading.Barrier(4)
    summaries = []

    def run():
        try:
            barrier.wait()
            summaries.append(dispatch_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(jobs_of(m)) == 1 for m in machines)
    assert sum(s["queued"] for s in summaries) == 6
    assert all(s["errors"] == [] for s in summaries)


def test_one_broken_customer_does_not_stop_the_others(customer, agent, machine):
    broken = CustomerFactory()
    protected(broken, make_agent(broken))
    # A zone the validator would refuse, written behind its back.
    type(broken).objects.filter(pk=broken.pk).update(time_zone="Mars/Olympus_Mons")
    summary = dispatch_due()
    assert summary["queued"] == 1
    assert len(summary["errors"]) == 1 and broken.slug in summary["errors"][0]
    assert len(jobs_of(machine)) == 1


# --- Cost -------------------------------------------------------------------------------------


def _passes(customer, agent, count):
    now = timezone.now()
    for _ in range(count):
        past_job(protected(customer, agent), now - timedelta(minutes=5))
    group = MachineGroupFactory(customer=customer)
    policy(customer, group=group, interval_minutes=30)
    policy(customer, machine=protected(customer, agent, group=group), enabled=False)
    with CaptureQueriesContext(connection) as first:
        dispatch_due(now, customers=[customer])
    with CaptureQueriesContext(connection) as second:
        dispatch_due(now, customers=[customer])
    return len(first), len(second)


def test_query_count_does_not_grow_with_the_machines(customer, agent, other_customer):
    few = _passes(customer, agent, 3)
    many = _passes(other_customer, make_agent(other_customer), 60)
    # The second pass writes nothing (next runs unchanged): reads only.
    assert few == many
    assert many[1] == 2  # the policies and the annotated machines


def test_a_large_fleet_dispatches_in_a_few_queries(customer, agent, django_assert_max_num_queries):
    now = timezone.now()
    machines = [protected(customer, agent) for _ in range(200)]
    ReplicationJob.objects.bulk_create(
        ReplicationJob(
            customer=customer,
            machine=m,
            agent=agent,
            trigger="schedule",
            state=JobState.SUCCEEDED,
            created_at=now - timedelta(minutes=10),
        )
        for m in machines
    )
    with django_assert_max_num_queries(6):
        summary = dispatch_due(now)
    assert (summary["not_due"], summary["next_run_updated"]) == (200, 200)
    assert next_run(machines[-1]) == now + timedelta(minutes=50)


# --- The task ---------------------------------------------------------------------------------


def test_the_task_dispatches_all_or_one_customer(customer, agent, machine, other_customer):
    other = protected(other_customer, make_agent(other_customer))
    summary = dispatch_replications.apply(kwargs={"customer_id": other_customer.pk}).get()
    assert (summary["customers"], summary["queued"]) == (1, 1)
    assert jobs_of(machine) == [] and len(jobs_of(other)) == 1
    summary = dispatch_replications.apply().get()
    assert (summary["customers"], summary["queued"], summary["not_due"]) == (2, 1, 1)
