"""The beat schedules of jobs and agents exist, point at registered tasks and expire."""

from django_celery_beat.models import PeriodicTask

from acura_portal.celery import app
from acura_portal.periodic import PERIODIC_TASKS

ORCHESTRATION = {
    "Jobs: dispatch due replications": "protection.tasks.dispatch_replications",
    "Jobs: reconcile": "acura_portal.tasks.reconcile_jobs",
    "Agents: mark offline": "clouds.tasks.mark_agents_offline",
    "Agents: delete old events": "clouds.tasks.delete_old_agent_events",
}


def test_every_periodic_task_names_a_registered_task():
    app.loader.import_default_modules()
    missing = [spec.task for spec in PERIODIC_TASKS if spec.task not in app.tasks]
    assert missing == []


def test_orchestration_schedules_are_created_by_migrate(db, settings):
    rows = {t.name: t for t in PeriodicTask.objects.filter(name__in=ORCHESTRATION)}
    assert {name: row.task for name, row in rows.items()} == ORCHESTRATION
    dispatch = rows["Jobs: dispatch due replications"]
    assert dispatch.interval.every == settings.DISPATCH_SECONDS
    assert dispatch.interval.period == "seconds"
    # A message that waited out an outage is dropped: the next tick does the work.
    assert dispatch.expire_seconds == max(settings.DISPATCH_SECONDS, 30)
    assert rows["Agents: mark offline"].interval.every == 30
    assert rows["Jobs: reconcile"].interval.every == 60
    assert rows["Agents: delete old events"].expire_seconds is None
