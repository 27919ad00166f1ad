"""The prune preview page: every role may look, strangers get a 404, nothing is deleted."""

import re

import pytest
from django.urls import reverse

from storage.models import SessionState, Snapshot, SnapshotState
from tenants.models import Role
from tests.factories import DiskFactory, MachineFactory

from .test_prune_service import make_snapshot, open_session, set_keep, utc


def preview_url(machine, slug=None):
    return reverse(
        "storage:machine_prune_preview",
        kwargs={"customer_slug": slug or machine.customer.slug, "pk": machine.pk},
    )


def row_of(html: str, snapshot) -> str:
    match = re.search(rf'<tr data-snapshot="{snapshot.pk}">(.*?)</tr>', html, re.S)
    assert match, f"no row for snapshot {snapshot.pk}"
    return match.group(1)


@pytest.fixture
def history(customer, machine):
    """Disk with four daily snapshots (one protected, one failed) under keep-last 1."""
    set_keep(customer, last=1)
    disk = DiskFactory(machine=machine, key="scsi0:0", label="Hard disk 1")
    old = make_snapshot(customer, disk, utc(2024, 5, 1, 10))
    protected = make_snapshot(customer, disk, utc(2024, 5, 2, 10), protected=True)
    failed = make_snapshot(customer, disk, utc(2024, 5, 3, 10), state=SnapshotState.FAILED)
    newest = make_snapshot(customer, disk, utc(2024, 5, 4, 10))
    return {"disk": disk, "old": old, "protected": protected, "failed": failed, "newest": newest}


@pytest.mark.parametrize("role_client", [Role.VIEWER, Role.OPERATOR, Role.ADMIN], indirect=True)
def test_every_role_sees_the_preview(role_client, machine, history):
    response = role_client.get(preview_url(machine))
    assert response.status_code == 200
    html = response.content.decode()
    assert "kept: keep-last" in row_of(html, history["newest"])
    assert "would be removed" in row_of(html, history["failed"])
    assert "Failed verification" in row_of(html, history["failed"])
    assert "kept: protected" in row_of(html, history["protected"])
    assert "Yes" in row_of(html, history["protected"])
    assert "would be removed" in row_of(html, history["old"])
    assert Snapshot.objects.for_customer(machine.customer).count() == 4  # it only reads


def test_rows_are_newest_first_in_the_customer_time_zone(admin_client_, machine, history):
    html = admin_client_.get(preview_url(machine)).content.decode()
    order = [history[k].pk for k in ("newest", "failed", "protected", "old")]
    positions = [html.index(f'data-snapshot="{pk}"') for pk in order]
    assert positions == sorted(positions)
    assert "2024-05-04 12:00:00 CEST" in row_of(html, history["newest"])  # 10:00 UTC, Berlin
    assert "<strong>2</strong> kept, <strong>2</strong> would be removed" in html


def test_rules_show_their_source_and_link_to_the_settings(admin_client_, customer, machine):
    set_keep(customer, last=5, daily=7)
    set_keep(customer, group=machine.group, weekly=3)
    set_keep(customer, machine=machine, monthly=2)
    response = admin_client_.get(preview_url(machine))
    rules = re.search(
        r'data-testid="keep-rules">(.*?)</table>', response.content.decode(), re.S
    ).group(1)
    assert re.search(r"Keep last</th><td>5 <div class=\"inherit\">inherited from customer", rules)
    assert re.search(r"Keep weekly</th><td>3 <div[^>]*>inherited from group Web servers", rules)
    assert re.search(r"Keep monthly</th><td>2 <div[^>]*>set on this machine", rules)
    settings_url = reverse(
        "protection:machine_settings", kwargs={"customer_slug": "acme", "pk": machine.pk}
    )
    assert f'href="{settings_url}"' in response.content.decode()


def test_base_of_an_open_upload_is_marked(admin_client_, customer, machine, history):
    open_session(customer, history["disk"], history["old"], state=SessionState.OPEN)
    html = admin_client_.get(preview_url(machine)).content.decode()
    assert "kept: base of an open upload" in row_of(html, history["old"])


def test_no_rule_set_says_everything_is_kept(admin_client_, customer, machine, history):
    set_keep(customer)  # every rule 0
    html = admin_client_.get(preview_url(machine)).content.decode()
    assert 'data-testid="keeps-all"' in html
    assert "would be removed</strong>" not in html


def test_empty_state_without_snapshots(viewer_client, customer, machine):
    DiskFactory(machine=machine)
    response = viewer_client.get(preview_url(machine))
    assert response.status_code == 200
    assert 'data-testid="prune-empty"' in response.content.decode()


def test_post_is_not_a_way_to_prune(operator_client, machine, history):
    assert operator_client.post(preview_url(machine)).status_code == 405
    assert Snapshot.objects.for_customer(machine.customer).count() == 4


def test_anonymous_is_sent_to_login(client, machine):
    response = client.get(preview_url(machine))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_stranger_gets_404_for_both_urls(stranger_client, machine, history):
    assert stranger_client.get(preview_url(machine)).status_code == 404
    assert stranger_client.get(preview_url(machine, slug="globex")).status_code == 404
    assert stranger_client.post(preview_url(machine, slug="globex")).status_code == 404


def test_member_cannot_reach_another_customers_machine_through_own_slug(
    admin_client_, other_customer
):
    foreign = MachineFactory(customer=other_customer)
    assert admin_client_.get(preview_url(foreign, slug="acme")).status_code == 404
    assert admin_client_.get(preview_url(foreign, slug="globex")).status_code == 404
