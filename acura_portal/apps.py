from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AcuraPortalConfig(AppConfig):
    name = "acura_portal"
    verbose_name = "Acura Portal"

    def ready(self):
        post_migrate.connect(_ensure_periodic_tasks, dispatch_uid="acura_ensure_periodic_tasks")


def _ensure_periodic_tasks(sender, using="default", **kwargs):
    # post_migrate fires once per app with models, after all migrations ran; the schedules
    # live in django-celery-beat's tables, so its signal is the one to act on.
    if sender.label != "django_celery_beat":
        return
    from .periodic import ensure_periodic_tasks

    ensure_periodic_tasks(using=using)
