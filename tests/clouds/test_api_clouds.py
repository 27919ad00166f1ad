"""The customer API of clouds: roles, filters, writes through the services, isolation, and
registration against real peers (the vSphere simulator with its self-signed certificate and
the in-test oVirt engine). The password goes in and never comes out."""

import pytest

from clouds.models import Cloud
from clouds.services.clouds import cloud_password
from tenants.models import Role
from tests.ovirt_support import running_engine
from tests.vsphere_support import running_vcsim

from .cloud_support import PASSWORD, make_cloud
from .conftest import client_of, enroll, error_of

pytestmark = pytest.mark.django_db

BASE = "/api/v1/c/acme/clouds/"
USER = "acura@vsphere.local"
EVERYONE = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


def secret_free(response, *secrets):
    """The response, checked to carry no password (neither the value nor the field)."""
    for secret in (PASSWORD, *secrets):
        assert secret.encode() not in response.content, response.content
    assert b'"password"' not in response.content or response.status_code == 400
    return response


def rows(customer):
    return sorted(Cloud.objects.for_customer(customer).values_list(*CHANGEABLE))


CHANGEABLE = ["id", "name", "endpoint", "login", "password_sealed", "enforce_quiesce",
              "disk_storage_threshold_percent", "discovery_level", "checked_at"]  # fmt: skip


@pytest.fixture
def clouds(customer):
    vcenter = make_cloud(customer, name="vcenter-prod", endpoint="vc1.example.test")
    ovirt = make_cloud(customer, name="zvirt", platform="ovirt")
    make_cloud(customer, name="vcenter-lab", endpoint="lab.example.test")
    return vcenter, ovirt


# --- Reading --------------------------------------------------------------------------


@pytest.mark.parametrize("member", EVERYONE, indirect=True)
def test_every_role_lists_and_reads_clouds_without_the_password(member, customer, clouds):
    vcenter, _ = clouds
    enroll(customer, platform="vmware", cloud=vcenter)
    body = secret_free(member.get(BASE)).json()
    assert body["count"] == 3
    assert [c["name"] for c in body["results"]] == ["vcenter-lab", "vcenter-prod", "zvirt"]
    one = secret_free(member.get(f"{BASE}{vcenter.pk}/")).json()
    assert (one["platform"], one["endpoint"], one["agent_count"]) == (
        "vmware",
        "vc1.example.test",
        1,
    )
    assert one["has_password"] is True and "password" not in one
    assert {"enforce_quiesce", "discovery_level", "inventory", "check_ok"} <= set(one)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?search=vcenter", ["vcenter-lab", "vcenter-prod"]),
        ("?search=lab.example", ["vcenter-lab"]),
        ("?search=VCENTER+vc1", ["vcenter-prod"]),
        ("?platform=ovirt", ["zvirt"]),
        ("?platform=vmware&search=prod", ["vcenter-prod"]),
        ("?page_size=1&page=2", ["vcenter-prod"]),
    ],
)
def test_search_platform_filter_and_pages(viewer, clouds, query, names):
    assert [c["name"] for c in viewer.get(BASE + query).json()["results"]] == names


def test_a_bad_platform_filter_is_400(viewer, clouds):
    error = error_of(viewer.get(BASE + "?platform=linux"), 400)
    assert "platform" in error["details"]


# --- Roles and bad input --------------------------------------------------------------


def test_viewers_cannot_write_and_operators_cannot_edit_or_delete(
    viewer, operator, customer, clouds
):
    vcenter, _ = clouds
    before = rows(customer)
    one = f"{BASE}{vcenter.pk}/"
    new = {"platform": "vmware", "name": "n", "endpoint": "e", "login": "l", "password": "p"}
    edits = [("patch", one, {"name": "x"}), ("put", one, {"name": "x"}), ("delete", one, None)]
    for client, calls in [
        (viewer, [("post", BASE, new), ("post", f"{one}test/", {}), *edits]),
        (operator, edits),
    ]:
        for method, path, body in calls:
            response = getattr(client, method)(path, body, format="json")
            assert "role" in error_of(secret_free(response), 403)["message"]
    assert rows(customer) == before


def test_admin_changes_names_and_options_without_a_new_check(admin, customer, clouds):
    vcenter, _ = clouds
    one = f"{BASE}{vcenter.pk}/"
    response = secret_free(
        admin.patch(one, {"name": "vc-main", "enforce_quiesce": True}, format="json")
    )
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["enforce_quiesce"]) == ("vc-main", True)
    full = {"name": "vc-1", "endpoint": "vc1.example.test", "login": "administrator@vsphere.local",
            "free_space_threshold_percent": 20}  # fmt: skip
    body = secret_free(admin.put(one, full, format="json")).json()
    assert (body["name"], body["free_space_threshold_percent"]) == ("vc-1", 20)
    assert body["enforce_quiesce"] is True  # omitted options are kept, not reset
    stored = Cloud.objects.for_customer(customer).get(pk=vcenter.pk)
    assert stored.checked_at is None and cloud_password(stored) == PASSWORD


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "zvirt"}, "name"),
        ({"name": "ZVIRT"}, "name"),
        ({"name": " "}, "name"),
        ({"disk_storage_threshold_percent": 101}, "disk_storage_threshold_percent"),
        ({"on_replication_start": "reboot"}, "on_replication_start"),
        ({"discovery_level": "host"}, "__all__"),  # an oVirt setting on a VMware cloud
        ({"enforce_quiesce": "maybe"}, "enforce_quiesce"),
    ],
)
def test_bad_changes_are_400_and_change_nothing(admin, customer, clouds, body, field):
    before = rows(customer)
    response = admin.patch(f"{BASE}{clouds[0].pk}/", body, format="json")
    assert field in error_of(secret_free(response), 400)["details"]
    assert rows(customer) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"platform": "linux"}, "platform"),
        ({"password": ""}, "password"),
        ({"password": None}, "password"),
        ({"name": "vcenter-prod"}, "name"),
        ({"endpoint": None}, "endpoint"),
        ({"free_space_threshold_percent": -1}, "free_space_threshold_percent"),
    ],
)
def test_bad_registrations_are_400_and_save_nothing(operator, customer, clouds, change, field):
    before = rows(customer)
    body = {"platform": "vmware", "name": "new", "endpoint": "127.0.0.1:9", "login": USER,
            "password": PASSWORD, **change}  # fmt: skip
    response = operator.post(BASE, body, format="json")
    assert field in error_of(secret_free(response), 400)["details"]
    assert rows(customer) == before


def test_delete_is_refused_while_agents_use_the_cloud(admin, customer, clouds):
    vcenter, ovirt = clouds
    enrolled = enroll(customer, platform="vmware", cloud=vcenter)
    error = error_of(admin.delete(f"{BASE}{vcenter.pk}/"), 400)
    assert "used by 1 agent" in error["message"] and error["details"] == {"code": "in_use"}
    assert Cloud.objects.for_customer(customer).filter(pk=vcenter.pk).exists()
    enrolled.agent.delete()
    assert admin.delete(f"{BASE}{vcenter.pk}/").status_code == 204
    assert admin.delete(f"{BASE}{ovirt.pk}/").status_code == 204
    assert rows(customer)[0][1] == "vcenter-lab" and len(rows(customer)) == 1


# --- Isolation ------------------------------------------------------------------------


def calls(pk):
    one = f"{pk}/"
    return [("get", one), ("put", one), ("patch", one), ("delete", one), ("post", one),
            ("post", f"{one}test/"), ("get", f"{one}test/")]  # fmt: skip


def test_another_customers_cloud_is_404_for_every_role_route_and_method(
    customer, other_customer, clouds
):
    theirs = make_cloud(other_customer, name="theirs")
    before = rows(other_customer)
    stranger = client_of(other_customer, Role.ADMIN)
    for role in EVERYONE:
        client = client_of(customer, role)
        for method, path in calls(theirs.pk):
            response = getattr(client, method)(BASE + path, {"name": "x"}, format="json")
            if response.status_code == 403:  # the role is refused before any lookup
                assert role != Role.ADMIN and method != "get", (role, method, path)
                continue
            error_of(response, 404)
        assert client.get(BASE).json()["count"] == 3
    for method, path in [("get", ""), ("post", ""), *calls(clouds[0].pk)]:
        response = getattr(stranger, method)(BASE + path, {"name": "x"}, format="json")
        error_of(secret_free(response), 404)
    assert rows(other_customer) == before


def test_a_method_the_route_lacks_is_405_on_own_clouds_only(admin, clouds):
    assert admin.get(f"{BASE}{clouds[0].pk}/test/").status_code == 405
    assert admin.get(f"{BASE}99999999/test/").status_code == 404


# --- Against real peers ---------------------------------------------------------------


@pytest.mark.vsphere
def test_register_a_vcenter_trusting_its_certificate_then_test_and_change_it(
    operator, admin, customer
):
    with running_vcsim(user=USER, password=PASSWORD) as (host, port):
        new = {"platform": "vmware", "name": "vcsim", "endpoint": f"{host}:{port}",
               "login": USER, "password": PASSWORD, "cluster_level_discover": True}  # fmt: skip
        error = error_of(secret_free(operator.post(BASE, new, format="json")), 400)
        assert error["details"]["code"] == "tls" and "not trusted" in error["message"]
        fingerprint = error["details"]["fingerprint"]
        assert len(fingerprint) > 60 and not Cloud.objects.for_customer(customer).exists()

        response = secret_free(operator.post(BASE, {**new, "tls_fingerprint": fingerprint}))
        assert response.status_code == 201, response.content
        cloud = response.json()
        assert cloud["check_ok"] is True and cloud["product"].startswith("VMware vCenter")
        assert cloud["tls_fingerprint"] == fingerprint and cloud["cluster_level_discover"]
        assert cloud["inventory"]["hosts"] == 4 and cloud["has_password"] is True
        one = f"{BASE}{cloud['id']}/"

        tested = secret_free(operator.post(f"{one}test/")).json()
        assert tested["ok"] is True and tested["product"].startswith("VMware vCenter")
        assert set(tested) == {"ok", "message", "product", "warnings"}

        # A wrong new password: refused by the simulator, nothing changes.
        response = admin.patch(one, {"password": "Wr0ng-typed-pw", "name": "x"}, format="json")
        error = error_of(secret_free(response, "Wr0ng-typed-pw"), 400)
        assert error["details"]["code"] == "auth"
        stored = Cloud.objects.for_customer(customer).get()
        assert stored.name == "vcsim" and cloud_password(stored) == PASSWORD
    # The simulator is gone: the test says so, recorded on the cloud.
    tested = secret_free(operator.post(f"{one}test/")).json()
    assert tested["ok"] is False and tested["message"]
    assert admin.get(one).json()["check_ok"] is False


def test_register_an_ovirt_engine(operator, admin, customer):
    with running_engine(password=PASSWORD) as engine:
        new = {"platform": "ovirt", "name": "zvirt", "endpoint": engine.url,
               "login": "admin@internal", "password": "Wr0ng-typed-pw"}  # fmt: skip
        response = operator.post(BASE, new, format="json")
        assert error_of(secret_free(response, "Wr0ng-typed-pw"), 400)["details"]["code"] == "auth"
        response = secret_free(
            operator.post(BASE, {**new, "password": PASSWORD, "discovery_level": "host"})
        )
        assert response.status_code == 201, response.content
        cloud = response.json()
        assert (cloud["discovery_level"], cloud["check_ok"]) == ("host", True)
        assert cloud["inventory"]["scopes_total"] == 3  # one agent per host
        one = f"{BASE}{cloud['id']}/"
        # A scope change is checked again with the stored password.
        body = secret_free(admin.patch(one, {"discovery_level": "cluster"}, format="json")).json()
        assert body["discovery_level"] == "cluster" and body["checked_at"] > cloud["checked_at"]
        error = error_of(admin.patch(one, {"enforce_quiesce": True}, format="json"), 400)
        assert "Not a ovirt setting" in str(error["details"])
