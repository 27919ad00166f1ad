"""Machine list (filters, search, sorting, pagination), bulk actions and machine detail."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from protection.models import Machine, MachineStatus, Platform, ReplicationPolicy
from tenants.models import Role
from tests.factories import DiskFactory, MachineFactory, MachineGroupFactory

ROLES = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


def list_url(slug="acme"):
    return reverse("protection:machine_list", args=[slug])


def bulk_url(slug="acme"):
    return reverse("protection:machine_bulk", args=[slug])


def detail_url(machine, slug="acme"):
    return reverse("protection:machine_detail", args=[slug, machine.pk])


def names(response):
    return [m.name for m in response.context["machines"]]


def status_of(machine):
    return Machine.objects.all_customers().get(pk=machine.pk).status


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


# --- The list -----------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ROLES, indirect=True)
def test_every_role_sees_the_list(role_client, machine):
    response = role_client.get(list_url())
    assert response.status_code == 200
    assert names(response) == ["web-01"]
    assert b"10.0.0.10" in response.content


def test_viewer_gets_no_selection_or_action_buttons(viewer_client, machine):
    content = viewer_client.get(list_url()).content
    assert b'name="machines"' not in content
    assert b"Start Protection" not in content


def test_operator_gets_selection_and_action_buttons(operator_client, machine, group):
    content = operator_client.get(list_url()).content.decode()
    assert f'name="machines" value="{machine.pk}"' in content
    assert 'value="start_protection"' in content
    assert 'value="stop_protection"' in content
    assert f'<option value="{group.pk}">Web servers</option>' in content


def test_the_list_shows_only_the_customers_machines(operator_client, machine, other_customer):
    MachineFactory(customer=other_customer, name="globex-secret")
    response = operator_client.get(list_url())
    assert names(response) == ["web-01"]
    assert b"globex-secret" not in response.content


@pytest.fixture
def fleet(customer, group):
    db = MachineGroupFactory(customer=customer, name="Databases")
    now = timezone.now()
    return {
        "web": MachineFactory(
            customer=customer,
            group=group,
            name="web-01",
            status=MachineStatus.IN_SYNC,
            last_replicated_at=now - timedelta(hours=1),
            ip_addresses=["10.1.0.5", "fe80::1"],
        ),
        "db": MachineFactory(
            customer=customer,
            group=db,
            name="db-01",
            platform=Platform.LINUX,
            os_name="Debian 12",
            status=MachineStatus.ERROR,
            last_replicated_at=now - timedelta(days=1),
            external_id="vm-4242",
            ip_addresses=["192.168.7.20"],
        ),
        "new": MachineFactory(
            customer=customer,
            group=None,
            name="app-01",
            platform=Platform.WINDOWS,
            os_name="Windows Server 2022",
            status=MachineStatus.DISCOVERED,
            ip_addresses=[],
        ),
        "db_group": db,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "error"}, ["db-01"]),
        ({"platform": "windows"}, ["app-01"]),
        ({"group": "none"}, ["app-01"]),
        ({"protection": "protected"}, ["db-01", "web-01"]),
        ({"protection": "unprotected"}, ["app-01"]),
        ({"q": "WEB"}, ["web-01"]),
        ({"q": "debian"}, ["db-01"]),
        ({"q": "vm-4242"}, ["db-01"]),
        ({"q": "192.168.7"}, ["db-01"]),
        ({"q": "fe80::1"}, ["web-01"]),
        ({"q": "01 windows"}, ["app-01"]),
        ({"q": "nothing-like-this"}, []),
        ({"status": "error", "platform": "vmware"}, []),
        # A bad value drops that one filter instead of failing the page.
        ({"status": "bogus"}, ["app-01", "db-01", "web-01"]),
        ({"group": "999999"}, ["app-01", "db-01", "web-01"]),
    ],
)
def test_filters_and_search(viewer_client, fleet, query, expected):
    response = viewer_client.get(list_url(), query)
    assert response.status_code == 200
    assert names(response) == expected


def test_filter_by_group(viewer_client, fleet):
    response = viewer_client.get(list_url(), {"group": fleet["db_group"].pk})
    assert names(response) == ["db-01"]


def test_filter_by_another_customers_group_is_ignored(viewer_client, fleet, other_customer):
    theirs = MachineGroupFactory(customer=other_customer)
    MachineFactory(customer=other_customer, group=theirs)
    response = viewer_client.get(list_url(), {"group": theirs.pk})
    assert names(response) == ["app-01", "db-01", "web-01"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["app-01", "db-01", "web-01"]),
        ("-name", ["web-01", "db-01", "app-01"]),
        ("status", ["app-01", "db-01", "web-01"]),  # discovered < error < in_sync
        ("-status", ["web-01", "db-01", "app-01"]),
        ("last_replicated", ["db-01", "web-01", "app-01"]),  # never replicated last
        ("-last_replicated", ["web-01", "db-01", "app-01"]),
        ("nonsense", ["app-01", "db-01", "web-01"]),
    ],
)
def test_sorting(viewer_client, fleet, sort, expected):
    assert names(viewer_client.get(list_url(), {"sort": sort})) == expected


def test_sort_header_links_toggle_direction_and_keep_filters(viewer_client, fleet):
    content = viewer_client.get(list_url(), {"q": "01", "sort": "name"}).content.decode()
    assert 'href="?q=01&amp;sort=-name"' in content
    assert 'href="?q=01&amp;sort=status"' in content
    assert 'href="?q=01&amp;sort=-last_replicated"' in content


def test_pagination_50_per_page_keeps_filters(viewer_client, customer, group):
    MachineFactory.create_batch(55, customer=customer, group=group, platform=Platform.LINUX)
    MachineFactory(customer=customer, group=group, platform=Platform.WINDOWS)

    first = viewer_client.get(list_url(), {"platform": "linux"})
    assert len(first.context["machines"]) == 50
    assert first.context["page_obj"].paginator.count == 55
    assert 'href="?platform=linux&amp;page=2"' in first.content.decode()

    second = viewer_client.get(list_url(), {"platform": "linux", "page": 2})
    assert len(second.context["machines"]) == 5
    assert not set(names(first)) & set(names(second))

    # A page number out of range shows the last page rather than an error.
    assert viewer_client.get(list_url(), {"page": 99}).status_code == 200


def test_empty_states(viewer_client, customer):
    empty = viewer_client.get(list_url())
    assert b'data-testid="machines-empty"' in empty.content
    assert b"No machines yet" in empty.content

    MachineFactory(customer=customer, name="web-01")
    no_match = viewer_client.get(list_url(), {"q": "zzz"})
    assert b'data-testid="machines-no-match"' in no_match.content
    assert b"No machine matches these filters" in no_match.content


def test_dashboard_links_use_the_protection_filter(viewer_client, fleet):
    dashboard = viewer_client.get(reverse("acura_portal:dashboard", args=["acme"]))
    assert b"?protection=protected" in dashboard.content
    assert names(viewer_client.get(list_url() + "?protection=protected")) == ["db-01", "web-01"]


# --- Bulk actions -----------------------------------------------------------------------


def post_bulk(client, machines, action, slug="acme", **extra):
    data = {"machines": [getattr(m, "pk", m) for m in machines], "action": action}
    data.update(extra)
    return client.post(bulk_url(slug), data, follow=True)


def test_viewer_cannot_run_bulk_actions(viewer_client, machine):
    response = viewer_client.post(
        bulk_url(), {"machines": [machine.pk], "action": "start_protection"}
    )
    assert response.status_code == 403
    assert status_of(machine) == MachineStatus.UNPROTECTED


@pytest.mark.parametrize("role_client", [Role.OPERATOR, Role.ADMIN], indirect=True)
def test_start_protection_reports_changed_and_skipped(role_client, customer):
    new = MachineFactory(customer=customer, status=MachineStatus.DISCOVERED)
    old = MachineFactory(customer=customer, status=MachineStatus.IN_SYNC)

    response = post_bulk(role_client, [new, old], "start_protection")

    assert response.redirect_chain[-1] == (list_url(), 302)
    assert messages_of(response) == [
        "Started protection of 1 machine. Skipped 1 already protected."
    ]
    assert (status_of(new), status_of(old)) == (MachineStatus.PROTECTED, MachineStatus.IN_SYNC)


def test_stop_protection(operator_client, customer):
    busy = MachineFactory(
        customer=customer,
        status=MachineStatus.REPLICATING,
        status_message="42 %",
        next_run_at=timezone.now(),
    )
    response = post_bulk(operator_client, [busy], "stop_protection")
    assert messages_of(response) == ["Stopped protection of 1 machine."]
    busy.refresh_from_db()
    assert (busy.status, busy.status_message, busy.next_run_at) == (
        MachineStatus.UNPROTECTED,
        "",
        None,
    )


def test_move_to_group_and_to_no_group(operator_client, customer, machine):
    target = MachineGroupFactory(customer=customer, name="Databases")
    response = post_bulk(operator_client, [machine], "move", group=target.pk)
    assert messages_of(response) == ["Moved 1 machine to group Databases."]
    machine.refresh_from_db()
    assert machine.group == target

    response = post_bulk(operator_client, [machine], "move", group="")
    assert messages_of(response) == ["Moved 1 machine to no group."]
    machine.refresh_from_db()
    assert machine.group is None


@pytest.mark.parametrize("action", ["start_protection", "stop_protection", "move"])
def test_a_foreign_machine_id_refuses_the_whole_action(
    operator_client, customer, other_customer, action
):
    mine = MachineFactory(customer=customer, status=MachineStatus.UNPROTECTED)
    theirs = MachineFactory(customer=other_customer, status=MachineStatus.IN_SYNC)
    target = MachineGroupFactory(customer=customer)

    response = post_bulk(operator_client, [mine, theirs], action, group=target.pk)

    assert response.status_code == 200
    assert messages_of(response) == [
        "Some of the selected machines do not exist (any more). Nothing was changed."
    ]
    mine.refresh_from_db()
    theirs = Machine.objects.all_customers().get(pk=theirs.pk)
    assert mine.status == MachineStatus.UNPROTECTED
    assert mine.group != target
    assert theirs.status == MachineStatus.IN_SYNC
    assert theirs.customer == other_customer


def test_unknown_and_malformed_ids_are_refused(operator_client, machine):
    for bad in (999999, "abc"):
        response = post_bulk(operator_client, [machine.pk, bad], "start_protection")
        assert "Nothing was changed" in messages_of(response)[0]
    assert status_of(machine) == MachineStatus.UNPROTECTED


def test_moving_into_another_customers_group_is_refused(
    operator_client, machine, group, other_customer
):
    theirs = MachineGroupFactory(customer=other_customer)
    response = post_bulk(operator_client, [machine], "move", group=theirs.pk)
    assert messages_of(response) == ["The selected group does not exist (any more)."]
    machine.refresh_from_db()
    assert machine.group == group


def test_a_stale_move_target_does_not_block_other_actions(operator_client, machine):
    response = post_bulk(operator_client, [machine], "start_protection", group=999999)
    assert messages_of(response) == ["Started protection of 1 machine."]


def test_missing_selection_or_action_is_a_clear_error(operator_client, machine):
    response = operator_client.post(bulk_url(), {"action": "start_protection"}, follow=True)
    assert messages_of(response) == ["Select at least one machine."]
    response = operator_client.post(
        bulk_url(), {"machines": [machine.pk], "action": "reboot"}, follow=True
    )
    assert messages_of(response) == ["Unknown action."]
    assert status_of(machine) == MachineStatus.UNPROTECTED


def test_next_returns_to_a_same_site_page_only(operator_client, machine, group):
    back = reverse("protection:group_detail", args=["acme", group.pk]) + "?q=web"
    response = operator_client.post(
        bulk_url(), {"machines": [machine.pk], "action": "start_protection", "next": back}
    )
    assert response.status_code == 302 and response["Location"] == back

    for evil in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = operator_client.post(
            bulk_url(), {"machines": [machine.pk], "action": "stop_protection", "next": evil}
        )
        assert response["Location"] == list_url()


def test_bulk_url_does_not_answer_get(viewer_client, customer):
    assert viewer_client.get(bulk_url()).status_code == 405


# --- Detail -----------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ROLES, indirect=True)
def test_detail_shows_every_field_disks_and_effective_settings(role_client, customer, group):
    machine = MachineFactory(
        customer=customer,
        group=group,
        name="web-01",
        external_id="4213-abcd",
        os_name="Ubuntu 24.04",
        ip_addresses=["10.0.0.10", "10.0.0.11"],
        cpus=4,
        ram_mb=8192,
        status=MachineStatus.ERROR,
        status_message="VMware Tools not running",
        last_replicated_at=timezone.now(),
    )
    DiskFactory(machine=machine, key="2000", label="Hard disk 1", size_bytes=40 * 1024**3)
    ReplicationPolicy.objects.create(customer=customer, group=group, interval_minutes=120)
    ReplicationPolicy.objects.create(customer=customer, machine=machine, keep_last=5)

    response = role_client.get(detail_url(machine))

    assert response.status_code == 200
    content = response.content.decode()
    for text in (
        "web-01",
        "VMware vSphere",
        "Web servers",
        "4213-abcd",
        "Ubuntu 24.04",
        "10.0.0.10, 10.0.0.11",
        "8 GiB",
        "Error",
        "VMware Tools not running",
        "Hard disk 1",
        "40.0 GiB",
        "2 hours",
        "inherited from group Web servers",
        "set on this machine",
        "built-in default",
        reverse("protection:machine_settings", args=["acme", machine.pk]),
    ):
        assert text in content, text
    rows = {row[0]: row[3] for row in response.context["effective"]}
    assert rows["interval_minutes"].label == "group Web servers"


def test_detail_actions_need_operator(viewer_client, operator_client, machine):
    assert b"Start Protection" not in viewer_client.get(detail_url(machine)).content
    content = operator_client.get(detail_url(machine)).content.decode()
    assert 'value="start_protection"' in content and 'value="move"' in content
    assert 'value="stop_protection"' not in content


def test_detail_action_returns_to_the_detail_page(operator_client, machine):
    response = operator_client.post(
        bulk_url(),
        {"machines": [machine.pk], "action": "start_protection", "next": detail_url(machine)},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == detail_url(machine)
    assert b'value="stop_protection"' in response.content


def test_detail_of_another_customers_machine_is_404(operator_client, other_customer):
    theirs = MachineFactory(customer=other_customer)
    assert operator_client.get(detail_url(theirs)).status_code == 404


# --- Cross-tenant -----------------------------------------------------------------------


def test_stranger_gets_404_on_every_machine_page_of_acme(stranger_client, machine):
    for url in (list_url(), detail_url(machine), bulk_url(), list_url() + "?q=web"):
        assert stranger_client.get(url).status_code == 404, url
    response = stranger_client.post(
        bulk_url(), {"machines": [machine.pk], "action": "start_protection"}
    )
    assert response.status_code == 404
    assert status_of(machine) == MachineStatus.UNPROTECTED


def test_stranger_cannot_reach_acme_objects_through_own_urls(stranger_client, machine, group):
    assert stranger_client.get(detail_url(machine, slug="globex")).status_code == 404
    assert stranger_client.post(detail_url(machine, slug="globex")).status_code == 404
    for action, extra in (("start_protection", {}), ("move", {"group": group.pk})):
        response = post_bulk(stranger_client, [machine], action, slug="globex", **extra)
        assert response.redirect_chain[-1][0] == list_url("globex")
        assert any("do not exist" in text for text in messages_of(response))
    machine.refresh_from_db()
    assert (machine.status, machine.group) == (MachineStatus.UNPROTECTED, group)
    # And the stranger's own list never shows acme's machines.
    assert names(stranger_client.get(list_url("globex"))) == []
