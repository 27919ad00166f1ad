"""Periodic tasks are created by migrate and never overwrite a provider admin's edits."""

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from acura_portal.periodic import PERIODIC_TASKS, ensure_periodic_tasks


def test_migrate_created_every_periodic_task(db):
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {spec.name for spec in PERIODIC_TASKS} <= names


def test_ensure_is_idempotent_and_keeps_admin_edits(db):
    spec = PERIODIC_TASKS[0]
    task = PeriodicTask.objects.get(name=spec.name)
    task.enabled = False
    task.interval = IntervalSchedule.objects.create(every=99, period=IntervalSchedule.MINUTES)
    task.save()
    assert ensure_periodic_tasks() == []
    task.refresh_from_db()
    assert task.enabled is False
    assert task.interval.every == 99


def test_ensure_recreates_a_deleted_task(db):
    spec = PERIODIC_TASKS[0]
    PeriodicTask.objects.filter(name=spec.name).delete()
    assert ensure_periodic_tasks() == [spec.name]
    assert PeriodicTask.objects.get(name=spec.name).task == spec.task


def test_clear_expired_sessions_task_runs(db):
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from acura_portal.tasks import clear_expired_sessions

    store = SessionStore()
    store["x"] = 1
    store.create()
    Session.objects.filter(pk=store.session_key).update(
        expire_date=timezone.now() - timezone.timedelta(days=1)
    )
    clear_expired_sessions.apply()
    assert not Session.objects.filter(pk=store.session_key).exists()
