"""The customer API of machine groups and machines: roles, filters, actions, isolation."""

from datetime import time

import pytest
from rest_framework.test import APIClient

from protection.models import Machine, MachineGroup, MachineStatus, Platform, ReplicationPolicy
from tenants.models import Role
from tests.factories import DiskFactory, MachineFactory, MachineGroupFactory, MembershipFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/c/acme"
WRITERS = [Role.OPERATOR, Role.ADMIN]
EVERYONE = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def api(request, customer) -> APIClient:
    """A logged-in API client of ``customer`` with the role given by indirect parametrize."""
    return api_for(MembershipFactory(customer=customer, role=request.param).user)


@pytest.fixture
def operator(operator_user) -> APIClient:
    return api_for(operator_user)


@pytest.fixture
def viewer(viewer_user) -> APIClient:
    return api_for(viewer_user)


@pytest.fixture
def stranger(stranger_user) -> APIClient:
    return api_for(stranger_user)


def machine_states(customer):
    return sorted(
        Machine.objects.for_customer(customer).values_list("id", "status", "group_id", "name")
    )


def group_states(customer):
    return sorted(MachineGroup.objects.for_customer(customer).values_list("id", "name"))


def assert_error(response, status):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["status"] == status
    assert error["message"]
    return error


# --- Machine groups -------------------------------------------------------------------


@pytest.mark.parametrize("api", EVERYONE, indirect=True)
def test_every_role_lists_groups_with_machine_count(api, customer, group, machine):
    MachineGroupFactory(customer=customer, name="Databases")
    body = api.get(f"{BASE}/machine-groups/").json()
    assert body["count"] == 2
    rows = [(g["name"], g["machine_count"]) for g in body["results"]]
    assert rows == [("Databases", 0), ("Web servers", 1)]
    detail = api.get(f"{BASE}/machine-groups/{group.pk}/").json()
    assert detail["machine_count"] == 1
    assert detail["name"] == "Web servers"


@pytest.mark.parametrize("api", WRITERS, indirect=True)
def test_writers_create_update_and_delete_groups(api, customer):
    response = api.post(
        f"{BASE}/machine-groups/", {"name": " Databases ", "description": "PG"}, format="json"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["name"] == "Databases"
    assert created["machine_count"] == 0
    url = f"{BASE}/machine-groups/{created['id']}/"

    response = api.patch(url, {"name": "DB servers"}, format="json")
    assert response.status_code == 200
    assert response.json()["description"] == "PG"
    response = api.put(url, {"name": "DB", "description": ""}, format="json")
    assert response.json()["name"] == "DB"
    assert MachineGroup.objects.for_customer(customer).get().description == ""

    assert api.delete(url).status_code == 204
    assert not MachineGroup.objects.for_customer(customer).exists()


def test_viewer_cannot_write_groups(viewer, customer, group):
    before = group_states(customer)
    url = f"{BASE}/machine-groups/{group.pk}/"
    for response in [
        viewer.post(f"{BASE}/machine-groups/", {"name": "New"}, format="json"),
        viewer.patch(url, {"name": "Renamed"}, format="json"),
        viewer.put(url, {"name": "Renamed"}, format="json"),
        viewer.delete(url),
    ]:
        error = assert_error(response, 403)
        assert "role" in error["message"]
    assert group_states(customer) == before


@pytest.mark.parametrize("name", ["Web servers", "web SERVERS"])
def test_duplicate_group_name_is_400_with_clear_message(operator, customer, group, name):
    before = group_states(customer)
    error = assert_error(operator.post(f"{BASE}/machine-groups/", {"name": name}), 400)
    assert error["details"]["name"] == [f"A group named “{name}” already exists."]
    other = MachineGroupFactory(customer=customer, name="Databases")
    response = operator.patch(f"{BASE}/machine-groups/{other.pk}/", {"name": name}, format="json")
    assert_error(response, 400)
    assert group_states(customer) == [*before, (other.pk, "Databases")]


def test_same_group_name_in_another_customer_is_fine(operator, other_customer):
    MachineGroupFactory(customer=other_customer, name="Web servers")
    response = operator.post(f"{BASE}/machine-groups/", {"name": "Web servers"}, format="json")
    assert response.status_code == 201


def test_blank_group_name_is_400(operator):
    error = assert_error(operator.post(f"{BASE}/machine-groups/", {"name": "  "}), 400)
    assert "name" in error["details"]


@pytest.mark.parametrize("via", ["query", "body"])
def test_delete_group_moves_machines_to_move_to(operator, customer, group, machine, via):
    target = MachineGroupFactory(customer=customer, name="Databases")
    url = f"{BASE}/machine-groups/{group.pk}/"
    if via == "query":
        response = operator.delete(f"{url}?move_to={target.pk}")
    else:
        response = operator.delete(url, {"move_to": target.pk}, format="json")
    assert response.status_code == 204
    machine.refresh_from_db()
    assert machine.group == target
    assert group_states(customer) == [(target.pk, "Databases")]


def test_delete_group_without_move_to_ungroups_machines(operator, group, machine):
    assert operator.delete(f"{BASE}/machine-groups/{group.pk}/").status_code == 204
    machine.refresh_from_db()
    assert machine.group is None


@pytest.mark.parametrize("move_to", ["self", "foreign", "unknown", "text"])
def test_delete_group_with_bad_move_to_changes_nothing(
    operator, customer, other_customer, group, machine, move_to
):
    foreign = MachineGroupFactory(customer=other_customer, name="Theirs")
    value = {"self": group.pk, "foreign": foreign.pk, "unknown": 999999, "text": "abc"}[move_to]
    before = (group_states(customer), machine_states(customer))
    response = operator.delete(f"{BASE}/machine-groups/{group.pk}/?move_to={value}")
    error = assert_error(response, 400)
    assert "move_to" in error["details"]
    assert (group_states(customer), machine_states(customer)) == before
    if move_to in ("foreign", "unknown"):
        assert error["details"]["move_to"] == [f"No group with id {value} in this customer."]


@pytest.mark.parametrize("pk", ["999999", "9" * 30])
def test_unknown_group_or_machine_is_404(viewer, pk):
    assert_error(viewer.get(f"{BASE}/machine-groups/{pk}/"), 404)
    assert_error(viewer.get(f"{BASE}/machines/{pk}/"), 404)


# --- Machine list and detail ----------------------------------------------------------


@pytest.fixture
def fleet(customer, group):
    """Four machines over two groups (one ungrouped), platforms and statuses."""
    db = MachineGroupFactory(customer=customer, name="Databases")
    return {
        "web1": MachineFactory(customer=customer, group=group, name="web-01"),
        "web2": MachineFactory(
            customer=customer,
            group=group,
            name="web-02",
            status=MachineStatus.IN_SYNC,
            ip_addresses=["192.168.7.20"],
        ),
        "pg": MachineFactory(
            customer=customer,
            group=db,
            name="pg-01",
            platform=Platform.LINUX,
            status=MachineStatus.ERROR,
            os_name="Debian 12",
        ),
        "loose": MachineFactory(
            customer=customer, group=None, name="win-01", platform=Platform.WINDOWS
        ),
        "db": db,
    }


def names(response):
    assert response.status_code == 200, response.content
    return [m["name"] for m in response.json()["results"]]


@pytest.mark.parametrize("api", EVERYONE, indirect=True)
def test_every_role_lists_machines(api, fleet, other_customer):
    MachineFactory(customer=other_customer, name="globex-vm")
    response = api.get(f"{BASE}/machines/")
    assert names(response) == ["pg-01", "web-01", "web-02", "win-01"]
    row = response.json()["results"][1]
    assert row["group_name"] == "Web servers"
    assert row["status"] == "unprotected"
    assert row["is_protected"] is False
    assert row["ip_addresses"] == ["10.0.0.10"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("group=GROUP", ["web-01", "web-02"]),
        ("group=none", ["win-01"]),
        ("status=error", ["pg-01"]),
        ("platform=linux", ["pg-01"]),
        ("platform=vmware&status=in_sync", ["web-02"]),
        ("search=WEB", ["web-01", "web-02"]),
        ("search=debian", ["pg-01"]),
        ("search=192.168.7", ["web-02"]),
        ("ordering=-name", ["win-01", "web-02", "web-01", "pg-01"]),
        ("ordering=status,name", ["pg-01", "web-02", "web-01", "win-01"]),
    ],
)
def test_machine_filters_search_and_ordering(viewer, fleet, group, query, expected):
    query = query.replace("GROUP", str(group.pk))
    assert names(viewer.get(f"{BASE}/machines/?{query}")) == expected


def test_filter_by_foreign_group_finds_nothing(viewer, fleet, other_customer):
    foreign = MachineGroupFactory(customer=other_customer)
    MachineFactory(customer=other_customer, group=foreign)
    assert names(viewer.get(f"{BASE}/machines/?group={foreign.pk}")) == []


@pytest.mark.parametrize(
    "query", ["status=broken", "platform=solaris", "group=abc", "group=²", "group=" + "9" * 30]
)
def test_bad_filter_value_is_400(viewer, fleet, query):
    error = assert_error(viewer.get(f"{BASE}/machines/?{query}"), 400)
    assert query.split("=")[0] in error["details"]


def test_pagination_shape(viewer, customer):
    MachineFactory.create_batch(5, customer=customer)
    first = viewer.get(f"{BASE}/machines/?page_size=2").json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["previous"] is None
    assert "page=2" in first["next"]
    last = viewer.get(f"{BASE}/machines/?page_size=2&page=3").json()
    assert len(last["results"]) == 1
    assert last["next"] is None
    assert_error(viewer.get(f"{BASE}/machines/?page=9"), 404)


@pytest.mark.parametrize("api", EVERYONE, indirect=True)
def test_machine_detail_has_disks_and_effective_settings_with_sources(
    api, customer, group, machine
):
    DiskFactory(machine=machine, key="2001", label="Hard disk 2", size_bytes=2048)
    DiskFactory(machine=machine, key="2000", label="Hard disk 1", size_bytes=1024)
    ReplicationPolicy.objects.create(customer=customer, interval_minutes=240, keep_daily=7)
    ReplicationPolicy.objects.create(customer=customer, group=group, interval_minutes=30)
    ReplicationPolicy.objects.create(
        customer=customer, machine=machine, window_start=time(1), window_end=time(5)
    )
    response = api.get(f"{BASE}/machines/{machine.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert [(d["key"], d["size_bytes"]) for d in body["disks"]] == [("2000", 1024), ("2001", 2048)]
    settings = body["effective_settings"]
    assert settings["interval_minutes"] == {
        "label": "Interval",
        "value": 30,
        "source": {"level": "group", "name": "Web servers", "label": "group Web servers"},
    }
    assert settings["keep_daily"]["value"] == 7
    assert settings["keep_daily"]["source"]["label"] == "customer settings"
    assert settings["window"]["value"] == {"start": "01:00:00", "end": "05:00:00"}
    assert settings["window"]["source"]["label"] == "machine web-01"
    assert settings["keep_last"]["source"] == {
        "level": "default",
        "name": "",
        "label": "built-in default",
    }
    assert settings["window_days"]["value"] == [1, 2, 3, 4, 5, 6, 7]


def test_machines_cannot_be_created_or_edited_by_customers(operator, machine):
    assert_error(operator.post(f"{BASE}/machines/", {"name": "x"}, format="json"), 405)
    url = f"{BASE}/machines/{machine.pk}/"
    assert_error(operator.patch(url, {"name": "x"}, format="json"), 405)
    assert_error(operator.delete(url), 405)


# --- Bulk actions ---------------------------------------------------------------------


@pytest.mark.parametrize("api", WRITERS, indirect=True)
def test_start_and_stop_protection(api, customer, fleet):
    ids = [fleet["web1"].pk, fleet["web2"].pk]
    response = api.post(f"{BASE}/machines/start-protection/", {"machines": ids}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "changed": 1,
        "skipped": 1,
        "message": "Started protection on 1 machine. 1 skipped (already protected).",
    }
    fleet["web1"].refresh_from_db()
    assert fleet["web1"].status == MachineStatus.PROTECTED

    response = api.post(f"{BASE}/machines/stop-protection/", {"machines": ids}, format="json")
    assert response.json()["changed"] == 2
    statuses = Machine.objects.for_customer(customer).filter(pk__in=ids).values_list("status")
    assert {s for (s,) in statuses} == {MachineStatus.UNPROTECTED}


@pytest.mark.parametrize("api", WRITERS, indirect=True)
def test_move_machines_to_group_and_out(api, customer, fleet):
    ids = [fleet["web1"].pk, fleet["loose"].pk]
    response = api.post(
        f"{BASE}/machines/move/", {"machines": ids, "group": fleet["db"].pk}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["changed"] == 2
    assert {m.group_id for m in Machine.objects.for_customer(customer).filter(pk__in=ids)} == {
        fleet["db"].pk
    }
    response = api.post(f"{BASE}/machines/move/", {"machines": ids, "group": None}, format="json")
    assert response.json()["changed"] == 2
    assert not Machine.objects.for_customer(customer).filter(pk__in=ids, group__isnull=False)


@pytest.mark.parametrize("path", ["start-protection", "stop-protection", "replicate-now", "move"])
def test_viewer_cannot_run_actions(viewer, customer, fleet, path):
    before = machine_states(customer)
    body = {"machines": [fleet["web1"].pk], "group": None}
    assert_error(viewer.post(f"{BASE}/machines/{path}/", body, format="json"), 403)
    assert machine_states(customer) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"machines": []}, "machines"),
        ({}, "machines"),
        ({"machines": ["x"]}, "machines"),
        ({"machines": [10**30]}, "machines"),
        ({"machines": "KNOWN"}, "machines"),
    ],
)
@pytest.mark.parametrize("path", ["start-protection", "stop-protection", "replicate-now", "move"])
def test_actions_reject_malformed_selection(operator, customer, fleet, path, body, field):
    before = machine_states(customer)
    if body.get("machines") == "KNOWN":
        body = {"machines": fleet["web1"].pk}
    error = assert_error(operator.post(f"{BASE}/machines/{path}/", body, format="json"), 400)
    assert field in error["details"]
    assert machine_states(customer) == before


def test_move_requires_group_key(operator, customer, fleet):
    body = {"machines": [fleet["web1"].pk]}
    error = assert_error(operator.post(f"{BASE}/machines/move/", body, format="json"), 400)
    assert "group" in error["details"]


@pytest.mark.parametrize("path", ["start-protection", "stop-protection", "replicate-now", "move"])
def test_unknown_machine_ids_are_named_and_nothing_changes(operator, customer, fleet, path):
    fleet["web2"].status = MachineStatus.PROTECTED
    fleet["web2"].save()
    before = machine_states(customer)
    ids = [fleet["web1"].pk, fleet["web2"].pk, 999998, 999999]
    body = {"machines": ids, "group": fleet["db"].pk}
    error = assert_error(operator.post(f"{BASE}/machines/{path}/", body, format="json"), 400)
    assert error["details"]["machines"] == ["No machine with ids 999998, 999999 in this customer."]
    assert machine_states(customer) == before


# --- Anonymous and strangers ----------------------------------------------------------


def test_anonymous_gets_403_json_everywhere(customer, group, machine):
    client = APIClient()
    for method, url in [
        ("get", f"{BASE}/machines/"),
        ("get", f"{BASE}/machines/{machine.pk}/"),
        ("get", f"{BASE}/machine-groups/"),
        ("post", f"{BASE}/machine-groups/"),
        ("delete", f"{BASE}/machine-groups/{group.pk}/"),
        ("post", f"{BASE}/machines/start-protection/"),
    ]:
        error = assert_error(getattr(client, method)(url), 403)
        assert error["message"] == "Authentication credentials were not provided."


def customer_routes(group, machine):
    """Every route of ``customer``'s objects, with a body where the route writes."""
    selection = {"machines": [machine.pk], "group": group.pk}
    return [
        ("get", "machine-groups/", None),
        ("post", "machine-groups/", {"name": "Intruders"}),
        ("get", f"machine-groups/{group.pk}/", None),
        ("put", f"machine-groups/{group.pk}/", {"name": "Hacked"}),
        ("patch", f"machine-groups/{group.pk}/", {"name": "Hacked"}),
        ("delete", f"machine-groups/{group.pk}/", None),
        ("get", "machines/", None),
        ("get", f"machines/{machine.pk}/", None),
        ("post", "machines/start-protection/", selection),
        ("post", "machines/stop-protection/", selection),
        ("post", "machines/move/", selection),
    ]


def test_stranger_gets_404_on_every_route_of_the_customer(stranger, customer, group, machine):
    before = (group_states(customer), machine_states(customer))
    for method, route, body in customer_routes(group, machine):
        response = getattr(stranger, method)(f"{BASE}/{route}", body, format="json")
        error = assert_error(response, 404)
        assert error["message"] == "No such customer."
    assert (group_states(customer), machine_states(customer)) == before


def test_stranger_cannot_reach_customer_objects_through_own_slug(
    stranger, customer, other_customer, group, machine
):
    """/c/globex/ with acme's ids: objects are 404, ids in bodies are 400; nothing changes."""
    own_group = MachineGroupFactory(customer=other_customer, name="Theirs")
    own_machine = MachineFactory(customer=other_customer, group=own_group)
    before = (group_states(customer), machine_states(customer))
    other_before = (group_states(other_customer), machine_states(other_customer))
    base = "/api/v1/c/globex"

    for method, route, body in customer_routes(group, machine):
        response = getattr(stranger, method)(f"{base}/{route}", body, format="json")
        if route in ("machine-groups/", "machines/") and method == "get":
            assert [r["id"] for r in response.json()["results"]] in (
                [own_group.pk],
                [own_machine.pk],
            )
        elif method == "post" and route == "machine-groups/":
            assert response.status_code == 201  # a new group of globex, nothing of acme
        elif method == "post":
            error = assert_error(response, 400)
            assert error["details"]["machines"] == [
                f"No machine with id {machine.pk} in this customer."
            ]
        else:
            assert_error(response, 404)

    # acme's group as a target for globex's own machines and group deletion.
    response = stranger.post(
        f"{base}/machines/move/",
        {"machines": [own_machine.pk], "group": group.pk},
        format="json",
    )
    assert assert_error(response, 400)["details"]["group"] == [
        f"No group with id {group.pk} in this customer."
    ]
    response = stranger.delete(f"{base}/machine-groups/{own_group.pk}/?move_to={group.pk}")
    assert "move_to" in assert_error(response, 400)["details"]
    response = stranger.get(f"{base}/machines/?group={group.pk}")
    assert response.json()["results"] == []

    assert (group_states(customer), machine_states(customer)) == before
    assert machine_states(other_customer) == other_before[1]
    assert sorted(name for _, name in group_states(other_customer)) == ["Intruders", "Theirs"]


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize("route", ["machines", "machine-groups"])
def test_foreign_id_is_404_for_every_method(stranger, group, machine, route, method):
    """Even a method the route lacks: a 405 is kept for the caller's own objects."""
    pk = machine.pk if route == "machines" else group.pk
    response = getattr(stranger, method)(f"/api/v1/c/globex/{route}/{pk}/", {}, format="json")
    assert_error(response, 404)


def test_unsupported_method_on_own_object_is_405(operator, machine, group):
    assert_error(operator.post(f"{BASE}/machines/{machine.pk}/", {}, format="json"), 405)
    assert_error(operator.post(f"{BASE}/machine-groups/{group.pk}/", {}, format="json"), 405)
