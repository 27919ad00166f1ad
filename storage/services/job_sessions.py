"""Upload sessions left open by replication jobs that ended (the reconciler's storage half).

An agent aborts its sessions when its job is cancelled or failed (it learns it from a 409
or its heartbeat). When the agent died instead, the session would stay open until it
expires, holding back garbage collection all that time. A short grace after the job ended
leaves the agent time to abort on its own; the chunks it uploaded stay in the store (GC's
grace period keeps them), so a later replication still sends only what is missing.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from protection.models import FINAL_JOB_STATES, ReplicationJob

from ..models import SessionState, UploadSession
from .sessions import session_abort

ENDED_JOB_GRACE = timedelta(minutes=2)


def sessions_abort_for_ended_jobs(now: datetime | None = None, grace=ENDED_JOB_GRACE) -> int:
    """Abort open sessions whose job ended more than ``grace`` ago (every customer).

    Each session is locked and its job re-checked first: a session the next job resumed
    (``session_open`` moves it to that job) is left alone."""
    cutoff = (now or timezone.now()) - grace
    candidates = (
        UploadSession.objects.all_customers()
        .filter(
            state=SessionState.OPEN,
            job__state__in=FINAL_JOB_STATES,
            job__finished_at__lt=cutoff,
        )
        .values_list("pk", "customer_id")
    )
    aborted = 0
    for pk, customer_id in list(candidates):
        with transaction.atomic():
            session = (
                UploadSession.objects.for_customer(customer_id)
                .select_for_update(of=("self",))
                .filter(pk=pk, state=SessionState.OPEN)
                .first()
            )
            if session is None or session.job_id is None:
                continue
            job = (
                ReplicationJob.objects.for_customer(customer_id)
                .filter(pk=session.job_id, state__in=FINAL_JOB_STATES, finished_at__lt=cutoff)
                .values("pk", "state")
                .first()
            )
            if job is None:
                continue
            session_abort(session, f"Its replication job {job['pk']} ended ({job['state']}).")
            aborted += 1
    return aborted
