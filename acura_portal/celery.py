"""The Celery application; configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acura_portal.settings")

app = Celery("acura_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_task_tokens = {}


@task_prerun.connect
def _bind_task_id(task_id=None, **_kwargs):
    # Log lines from a task carry the task id where web requests carry the request id.
    from .logging import request_id_var

    _task_tokens[task_id] = request_id_var.set(f"task:{task_id}")


@task_postrun.connect
def _unbind_task_id(task_id=None, **_kwargs):
    from .logging import request_id_var

    token = _task_tokens.pop(task_id, None)
    if token is not None:
        request_id_var.reset(token)
