"""Machine group pages: list, create, edit, detail, delete with a machine move."""

import pytest
from django.urls import reverse

from protection.models import Machine, MachineGroup
from tenants.models import Role
from tests.factories import MachineFactory, MachineGroupFactory

ROLES = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


def url(name, *args, slug="acme"):
    return reverse(f"protection:{name}", args=[slug, *args])


def groups_of(customer):
    return MachineGroup.objects.for_customer(customer)


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


# --- List -------------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ROLES, indirect=True)
def test_every_role_sees_groups_with_machine_counts(role_client, customer, group):
    MachineFactory.create_batch(2, customer=customer, group=group)
    MachineGroupFactory(customer=customer, name="Empty", description="nothing yet")
    response = role_client.get(url("group_list"))
    assert response.status_code == 200
    assert [(g.name, g.machine_count) for g in response.context["groups"]] == [
        ("Empty", 0),
        ("Web servers", 2),
    ]
    assert b"nothing yet" in response.content
    assert url("group_detail", group.pk).encode() in response.content


def test_new_group_button_only_for_operators(viewer_client, operator_client, group):
    create = url("group_create").encode()
    assert create not in viewer_client.get(url("group_list")).content
    assert create in operator_client.get(url("group_list")).content


def test_empty_state(viewer_client, customer):
    assert b'data-testid="groups-empty"' in viewer_client.get(url("group_list")).content


def test_list_paginates(viewer_client, customer):
    MachineGroupFactory.create_batch(55, customer=customer)
    first = viewer_client.get(url("group_list"))
    assert len(first.context["groups"]) == 50
    assert b'href="?page=2"' in first.content
    assert len(viewer_client.get(url("group_list"), {"page": 2}).context["groups"]) == 5


def test_list_hides_other_customers_groups(viewer_client, group, other_customer):
    MachineGroupFactory(customer=other_customer, name="Globex secret")
    response = viewer_client.get(url("group_list"))
    assert [g.name for g in response.context["groups"]] == ["Web servers"]
    assert b"Globex secret" not in response.content


# --- Create and edit -------------------------------------------------------------------


@pytest.mark.parametrize("role_client", [Role.OPERATOR, Role.ADMIN], indirect=True)
def test_create_group(role_client, customer):
    response = role_client.post(
        url("group_create"), {"name": "Databases", "description": "PostgreSQL"}, follow=True
    )
    group = groups_of(customer).get()
    assert (group.name, group.description) == ("Databases", "PostgreSQL")
    assert response.redirect_chain[-1][0] == url("group_detail", group.pk)
    assert messages_of(response) == ["Created group Databases."]


def test_viewer_can_open_but_not_submit_forms(viewer_client, customer, group):
    assert viewer_client.get(url("group_create")).status_code == 200
    assert viewer_client.get(url("group_update", group.pk)).status_code == 200
    assert viewer_client.post(url("group_create"), {"name": "New"}).status_code == 403
    assert viewer_client.post(url("group_update", group.pk), {"name": "X"}).status_code == 403
    assert [g.name for g in groups_of(customer)] == ["Web servers"]


@pytest.mark.parametrize("name", ["Web servers", "web servers"])
def test_duplicate_name_is_a_form_error(operator_client, customer, group, name):
    response = operator_client.post(url("group_create"), {"name": name})
    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["name"][0]
    assert b"already exists" in response.content
    assert groups_of(customer).count() == 1


def test_same_name_in_another_customer_is_fine(operator_client, customer, other_customer):
    MachineGroupFactory(customer=other_customer, name="Web servers")
    operator_client.post(url("group_create"), {"name": "Web servers"})
    assert groups_of(customer).filter(name="Web servers").exists()


def test_name_is_required(operator_client, customer):
    response = operator_client.post(url("group_create"), {"name": "  "})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assert not groups_of(customer).exists()


def test_edit_group(operator_client, group):
    form = operator_client.get(url("group_update", group.pk))
    assert form.context["form"].initial["name"] == "Web servers"
    response = operator_client.post(
        url("group_update", group.pk), {"name": "Frontends", "description": "nginx"}, follow=True
    )
    group.refresh_from_db()
    assert (group.name, group.description) == ("Frontends", "nginx")
    assert messages_of(response) == ["Saved group Frontends."]


def test_edit_to_a_taken_name_is_a_form_error(operator_client, customer, group):
    MachineGroupFactory(customer=customer, name="Databases")
    response = operator_client.post(url("group_update", group.pk), {"name": "Databases"})
    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["name"][0]
    group.refresh_from_db()
    assert group.name == "Web servers"


# --- Detail -----------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ROLES, indirect=True)
def test_detail_lists_the_groups_machines(role_client, customer, group, machine):
    MachineFactory(customer=customer, group=None, name="loner")
    response = role_client.get(url("group_detail", group.pk))
    assert response.status_code == 200
    assert [m.name for m in response.context["machines"]] == ["web-01"]
    content = response.content.decode()
    assert url("group_settings", group.pk) in content
    # Register new platform from the group's page pre-selects the group in the wizard.
    assert f'/c/acme/register/?group={group.pk}"' in content
    assert 'data-testid="group-register-platform"' in content


def test_detail_filters_within_the_group(viewer_client, customer, group):
    MachineFactory(customer=customer, group=group, name="web-01")
    MachineFactory(customer=customer, group=group, name="web-02", os_name="Windows")
    MachineFactory(customer=customer, group=None, name="other", os_name="Windows")
    response = viewer_client.get(url("group_detail", group.pk), {"q": "windows"})
    assert [m.name for m in response.context["machines"]] == ["web-02"]
    # The group filter itself is fixed on this page: a group parameter cannot widen it.
    response = viewer_client.get(url("group_detail", group.pk), {"group": "none"})
    assert [m.name for m in response.context["machines"]] == ["web-01", "web-02"]


def test_detail_empty_state_and_operator_buttons(viewer_client, operator_client, group):
    response = viewer_client.get(url("group_detail", group.pk))
    assert b"No machines in this group yet" in response.content
    assert url("group_update", group.pk).encode() not in response.content
    assert url("group_delete", group.pk).encode() not in response.content
    content = operator_client.get(url("group_detail", group.pk)).content
    assert url("group_update", group.pk).encode() in content
    assert url("group_delete", group.pk).encode() in content


def test_bulk_actions_from_the_group_page_return_there(operator_client, group, machine):
    back = url("group_detail", group.pk)
    content = operator_client.get(back).content.decode()
    assert f'name="next" value="{back}"' in content
    response = operator_client.post(
        url("machine_bulk"),
        {"machines": [machine.pk], "action": "start_protection", "next": back},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == back
    assert messages_of(response) == ["Started protection of 1 machine."]


# --- Delete -----------------------------------------------------------------------------


def test_deleting_an_empty_group_just_confirms(operator_client, customer, group):
    page = operator_client.get(url("group_delete", group.pk))
    assert b"The group has no machines." in page.content
    assert b'name="move_to"' not in page.content
    response = operator_client.post(url("group_delete", group.pk), follow=True)
    assert response.redirect_chain[-1][0] == url("group_list")
    assert messages_of(response) == ["Deleted group Web servers."]
    assert not groups_of(customer).exists()


def test_deleting_a_non_empty_group_asks_where_machines_go(
    operator_client, customer, group, machine, other_customer
):
    target = MachineGroupFactory(customer=customer, name="Databases")
    MachineGroupFactory(customer=other_customer, name="Globex group")
    page = operator_client.get(url("group_delete", group.pk))
    choices = [label for _value, label in page.context["form"].fields["move_to"].choices]
    assert choices == ["No group", "Databases"]  # not itself, not another customer's
    assert b'name="move_to"' in page.content

    response = operator_client.post(
        url("group_delete", group.pk), {"move_to": target.pk}, follow=True
    )

    assert messages_of(response) == [
        "Deleted group Web servers. Moved 1 machine to group Databases."
    ]
    machine.refresh_from_db()
    assert machine.group == target
    assert list(groups_of(customer)) == [target]


def test_delete_moving_machines_to_no_group(operator_client, customer, group, machine):
    operator_client.post(url("group_delete", group.pk), {"move_to": ""})
    machine.refresh_from_db()
    assert machine.group is None
    assert not groups_of(customer).exists()


@pytest.mark.parametrize("target", ["itself", "foreign", "unknown"])
def test_delete_with_a_bad_target_changes_nothing(
    operator_client, customer, other_customer, group, machine, target
):
    move_to = {
        "itself": group.pk,
        "foreign": MachineGroupFactory(customer=other_customer).pk,
        "unknown": 999999,
    }[target]
    response = operator_client.post(url("group_delete", group.pk), {"move_to": move_to})
    assert response.status_code == 200
    assert response.context["form"].errors["move_to"]
    machine.refresh_from_db()
    assert machine.group == group


def test_viewer_cannot_delete(viewer_client, customer, group, machine):
    assert viewer_client.get(url("group_delete", group.pk)).status_code == 200
    assert viewer_client.post(url("group_delete", group.pk)).status_code == 403
    assert groups_of(customer).exists()


# --- Cross-tenant -----------------------------------------------------------------------

PAGES = ["group_detail", "group_update", "group_delete"]


def test_stranger_gets_404_on_acme_group_pages(stranger_client, customer, group, machine):
    for name in ("group_list", "group_create"):
        assert stranger_client.get(url(name)).status_code == 404, name
        assert stranger_client.post(url(name), {"name": "Pwned"}).status_code == 404, name
    for name in PAGES:
        assert stranger_client.get(url(name, group.pk)).status_code == 404, name
        assert stranger_client.post(url(name, group.pk), {"name": "Pwned"}).status_code == 404
    group.refresh_from_db()
    assert group.name == "Web servers"
    assert Machine.objects.for_customer(customer).get().group == group


def test_stranger_gets_404_for_acme_ids_under_own_slug(stranger_client, customer, group):
    for name in PAGES:
        target = url(name, group.pk, slug="globex")
        assert stranger_client.get(target).status_code == 404, name
        # The id is resolved before the method: 404 even where the method is not allowed.
        assert stranger_client.post(target, {"name": "Pwned"}).status_code == 404, name
        assert stranger_client.delete(target).status_code == 404, name
    group.refresh_from_db()
    assert group.name == "Web servers"


def test_stranger_cannot_move_machines_into_acme_group(stranger_client, other_customer, group):
    theirs = MachineGroupFactory(customer=other_customer, name="Theirs")
    MachineFactory(customer=other_customer, group=theirs)
    response = stranger_client.post(
        url("group_delete", theirs.pk, slug="globex"), {"move_to": group.pk}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["move_to"]
    assert groups_of(other_customer).filter(pk=theirs.pk).exists()
