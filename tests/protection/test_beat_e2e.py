"""Beat dispatches replications with a real Celery worker and beat, and a worker killed with
SIGKILL loses nothing: the next ticks and the reconciler repair what it left.

Runs on whatever broker the environment gives (the filesystem broker by default; Redis when
CI sets CELERY_BROKER_URL) and on SQLite or PostgreSQL likewise (``isolated_env``).
"""

import json
import os
import sys
import textwrap
import time

import pytest

from tests.e2e_support import ROOT, Process, isolated_env

pytestmark = pytest.mark.e2e

# The test's hand in the installation: migrates, creates the customer, an online agent and
# a protected machine, makes the reconciler tick every 2 s (an admin edit of its schedule),
# then keeps the agent online and prints the jobs and machine statuses twice a second. When
# the file ``break`` appears it plants what a crashed worker leaves behind, once.
PROBE = textwrap.dedent(
    """
    import json, os, sys, time
    from datetime import timedelta
    sys.path.insert(0, {root!r})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acura_portal.settings")
    import django
    django.setup()
    from django.core.management import call_command
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask
    from clouds.models import Agent
    from protection.models import Machine, ReplicationJob
    from tenants.models import Customer

    call_command("migrate", verbosity=0)
    customer = Customer.objects.create(slug="beat", name="Beat", time_zone="UTC")
    agent = Agent.objects.create(
        customer=customer, platform="linux", status="online", last_seen_at=timezone.now()
    )

    def machine(name, **fields):
        fields = {{"status": "protected", "agent": agent, **fields}}
        return Machine.objects.create(
            customer=customer, name=name, platform="linux", external_id=name, **fields
        )

    def job(m, state, age, **fields):
        created = timezone.now() - age
        return ReplicationJob.objects.create(
            customer=customer, machine=m, agent=agent, trigger="schedule", state=state,
            created_at=created, **fields
        )

    machine("alpha")
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period="seconds")
    reconcile = PeriodicTask.objects.get(name="Jobs: reconcile")
    reconcile.interval = every_2s
    reconcile.save()
    print("READY", flush=True)
    broken = False
    while True:
        Agent.objects.for_customer(customer).update(status="online", last_seen_at=timezone.now())
        if not broken and os.path.exists({break_file!r}):
            broken = True
            machine("bravo")  # newly protected: due at once
            # A worker died between the job's end and the machine's status write.
            charlie = machine(
                "charlie", status="replicating",
                last_replicated_at=timezone.now() - timedelta(minutes=10),
            )
            job(charlie, "succeeded", timedelta(minutes=10))
            # A job whose agent vanished: no progress for two hours.
            delta = machine("delta", status="replicating")
            hours_ago = timezone.now() - timedelta(hours=2)
            job(delta, "running", timedelta(hours=2), started_at=hours_ago,
                last_progress_at=hours_ago)
            print("BROKEN", flush=True)
        jobs = ReplicationJob.objects.for_customer(customer).order_by("id")
        state = {{
            "jobs": [
                [j.machine.name, j.state, j.trigger, j.error_message]
                for j in jobs.select_related("machine")
            ],
            "machines": dict(
                Machine.objects.for_customer(customer).values_list("name", "status")
            ),
        }}
        print("STATE " + json.dumps(state), flush=True)
        time.sleep(0.5)
    """
)


def _celery(*args):
    return [sys.executable, "-m", "celery", "-A", "acura_portal", "--quiet", *args]


def _worker(env):
    return Process(
        _celery(
            "worker",
            "--loglevel", "INFO",
            "--concurrency", "1",
            "--hostname", f"worker-{os.getpid()}@%h",
            "--without-mingle", "--without-gossip",
        ),
        env,
    )  # fmt: skip


class Probe(Process):
    def state(self) -> dict:
        for line in reversed(list(self.lines)):
            if line.startswith("STATE "):
                return json.loads(line[len("STATE ") :])
        return {"jobs": [], "machines": {}}

    def wait_until(self, what: str, predicate, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if predicate(state):
                return state
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"not seen within {timeout}s: {what}\n{self.output[-3000:]}")


def jobs_of(state, name):
    return [job for job in state["jobs"] if job[0] == name]


def active(state, name):
    return [job for job in jobs_of(state, name) if job[1] in ("queued", "running", "committing")]


def test_beat_dispatches_and_survives_a_killed_worker(tmp_path):
    with isolated_env(tmp_path) as env:
        env["ACURA_DISPATCH_SECONDS"] = "2"
        break_file = tmp_path / "break"
        probe_path = tmp_path / "probe.py"
        probe_path.write_text(PROBE.format(root=str(ROOT), break_file=str(break_file)))

        probe = Probe([sys.executable, str(probe_path)], env)
        worker = _worker(env)
        beat = None
        try:
            probe.wait_for_output(r"^READY$", timeout=60)
            beat = Process(
                _celery("beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-db")),
                env,
            )
            # Beat's first ticks: the protected machine with an online agent gets its job.
            state = probe.wait_until("a scheduled job for alpha", lambda s: jobs_of(s, "alpha"))
            assert jobs_of(state, "alpha") == [["alpha", "queued", "schedule", ""]]

            # SIGKILL the worker (and its pool) wherever it is; beat keeps sending ticks.
            worker.kill_group()
            worker.stop()
            break_file.touch()
            probe.wait_for_output(r"^BROKEN$", timeout=10)
            time.sleep(3)  # dispatch and reconcile ticks go unanswered
            state = probe.state()
            assert jobs_of(state, "bravo") == []  # nothing happens without a worker…
            assert state["machines"]["charlie"] == "replicating"
            assert active(state, "delta") == [["delta", "running", "schedule", ""]]

            # …and a new worker catches up: the backlog and the next ticks repair it all.
            worker = _worker(env)
            state = probe.wait_until(
                "bravo dispatched, charlie and delta repaired",
                lambda s: (
                    jobs_of(s, "bravo")
                    and s["machines"]["charlie"] == "in_sync"
                    and active(s, "delta") != [["delta", "running", "schedule", ""]]
                ),
            )
            time.sleep(2.5)  # more ticks: still exactly one job each
            state = probe.state()
        finally:
            for process in (beat, worker, probe):
                if process is not None:
                    process.kill_group()
                    process.stop()

        assert jobs_of(state, "alpha") == [["alpha", "queued", "schedule", ""]]
        assert jobs_of(state, "bravo") == [["bravo", "queued", "schedule", ""]]
        assert jobs_of(state, "charlie") == [["charlie", "succeeded", "schedule", ""]]
        stuck = jobs_of(state, "delta")[0]
        assert stuck[1] == "failed"
        assert stuck[3] == "No progress from the agent for 30 minutes; the job was failed."
        # Its last job is two hours old, so the schedule queued the retry right away.
        assert jobs_of(state, "delta")[1:] == [["delta", "queued", "schedule", ""]]
        assert state["machines"]["delta"] == "error"
        for name in ("alpha", "bravo", "charlie", "delta"):
            assert len(active(state, name)) <= 1
        assert "Traceback" not in worker.output, worker.output[-3000:]
