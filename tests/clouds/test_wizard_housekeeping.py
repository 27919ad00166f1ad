"""Beat's download housekeeping: stale unfinished wizard runs go, recent and finished stay;
cached packages of ended links are dropped while live links keep theirs. A HEAD request on
a link builds, counts and logs nothing."""

from datetime import timedelta

from django.utils import timezone

from clouds.models import DownloadEvent, DownloadLink, WizardDraft
from clouds.services.downloads import (
    download_link_create,
    download_link_revoke,
    download_link_serve,
)
from clouds.services.wizard import draft_start
from clouds.tasks import download_housekeeping


def test_stale_unfinished_runs_are_deleted(customer, operator_user):
    stale = draft_start(customer, operator_user, platform="linux")
    recent = draft_start(customer, operator_user, platform="windows")
    finished = draft_start(customer, operator_user, platform="windows")
    old = timezone.now() - timedelta(days=31)
    WizardDraft.objects.for_customer(customer).filter(pk__in=[stale.pk, finished.pk]).update(
        updated_at=old
    )
    WizardDraft.objects.for_customer(customer).filter(pk=finished.pk).update(finished_at=old)
    summary = download_housekeeping()
    assert summary["wizard_drafts_deleted"] == 1
    left = set(WizardDraft.objects.for_customer(customer).values_list("pk", flat=True))
    assert left == {recent.pk, finished.pk}


def test_ended_links_lose_their_cached_package(customer, settings):
    live = download_link_create(customer, platform="windows", server_url="http://portal")
    ended = download_link_create(customer, platform="windows", server_url="http://portal")
    live_path = download_link_serve(live.text).path
    ended_path = download_link_serve(ended.text).path
    download_link_revoke(ended.link)  # revoking drops it at once ...
    assert not ended_path.exists()
    ended_path.parent.mkdir(parents=True)  # ... and a leftover folder goes with housekeeping
    assert download_housekeeping()["package_caches_dropped"] == 1
    assert live_path.exists() and not ended_path.parent.parent.exists()


def test_a_head_request_builds_counts_and_logs_nothing(client, customer):
    new = download_link_create(customer, platform="windows", server_url="http://portal")
    response = client.head(new.path)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="hwragent.zip"'
    assert DownloadLink.objects.for_customer(customer).get().downloads == 0
    assert not DownloadEvent.objects.for_customer(customer).exists()
    download_link_revoke(new.link)
    assert client.head(new.path).status_code == 410
    assert client.head("/download/acdl_nope.nope/").status_code == 404
