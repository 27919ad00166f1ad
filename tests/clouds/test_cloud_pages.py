"""Manage Clouds pages: the list (search, platform filter, pagination, empty state), edit
(checked against the in-test oVirt engine and the vSphere simulator, with "Trust this
certificate"), delete, Test connection and Download Replication Agent, for each role; the
password is never on a page; another customer's cloud is a 404 everywhere."""

import pytest
from django.urls import reverse

from clouds.models import Cloud, DownloadLink
from clouds.services.clouds import cloud_create, cloud_password
from tenants.models import Role
from tests.factories import MachineGroupFactory
from tests.ovirt_support import running_engine
from tests.vsphere_support import running_vcsim

from .cloud_support import PASSWORD, make_cloud, make_link
from .conftest import enroll

ROLES = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
ACTIONS = ["cloud_edit", "cloud_delete", "cloud_test", "cloud_download"]


def url(name, *args, slug="acme"):
    return reverse(f"clouds:{name}", args=[slug, *args])


def texts(response):
    return [str(m) for m in response.context["messages"]]


def stored(cloud) -> Cloud:
    return Cloud.objects.for_customer(cloud.customer_id).get(pk=cloud.pk)


def ovirt_cloud(customer, engine, name="zvirt"):
    return cloud_create(
        customer,
        platform="ovirt",
        name=name,
        endpoint=engine.url,
        login="admin@internal",
        password=PASSWORD,
    )


def edit_data(cloud, **changes) -> dict:
    """The edit form as the page posts it, with ``changes`` (field names without prefix)."""
    values = {
        "name": cloud.name,
        "endpoint": cloud.endpoint,
        "login": cloud.login,
        "password": "",
        "trust_fingerprint": cloud.tls_fingerprint,
    }
    if cloud.platform == "vmware":
        values.update(
            on_replication_start=cloud.on_replication_start,
            on_replication_finish=cloud.on_replication_finish,
            disk_storage_threshold_percent=cloud.disk_storage_threshold_percent,
            free_space_threshold_percent=cloud.free_space_threshold_percent,
        )
        for flag in ("enforce_quiesce", "cluster_level_discover"):
            if getattr(cloud, flag):
                values[flag] = "on"
    else:
        values["discovery_level"] = cloud.discovery_level
    values.update(changes)
    return {f"cloud-{key}": value for key, value in values.items() if value is not None}


# --- The list -----------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ROLES, indirect=True)
def test_every_role_sees_the_list_and_the_buttons_its_role_allows(role_client, request, customer):
    cloud = make_cloud(customer, endpoint="vc.example.test", login="admin@vsphere.local")
    Cloud.objects.for_customer(customer).filter(pk=cloud.pk).update(
        check_ok=True,
        checked_at=cloud.created_at,
        product="VMware vCenter Server 8.0",
        inventory={
            "datacenters": 1,
            "clusters": 1,
            "hosts": 4,
            "vms": 12,
            "scopes": [{"kind": "host", "name": "esx1"}],
            "scopes_total": 4,
        },
    )
    enroll(customer, platform="vmware", cloud=cloud)
    response = role_client.get(url("cloud_list"))
    assert response.status_code == 200
    [row] = response.context["clouds"]
    assert row.agent_count == 1
    content = response.content.decode()
    for text in (
        "vcenter",
        "VMware vSphere",
        "vc.example.test",
        "admin@vsphere.local",
        "VMware vCenter Server 8.0",
        "1 data center",
        "4 hosts",
        "12 VMs",
        "4 agents needed (one per host)",
        url("agent_list") + "?q=vcenter",
    ):
        assert text in content, text
    role = request.node.callspec.params["role_client"]
    operate = role != Role.VIEWER
    assert (url("cloud_test", cloud.pk) in content) is operate
    assert (url("cloud_download", cloud.pk) in content) is operate
    assert (url("cloud_delete", cloud.pk) in content) is (role == Role.ADMIN)
    assert url("cloud_edit", cloud.pk) in content


def test_the_list_shows_only_the_customers_clouds(viewer_client, customer, other_customer):
    make_cloud(customer, name="ours")
    make_cloud(other_customer, name="theirs")
    response = viewer_client.get(url("cloud_list"))
    assert [c.name for c in response.context["clouds"]] == ["ours"]
    assert b"theirs" not in response.content


def test_search_platform_filter_and_pagination(viewer_client, customer):
    make_cloud(
        customer, name="engine", platform="ovirt", endpoint="https://zv.lan/ovirt-engine/api"
    )
    for n in range(25):
        make_cloud(customer, name=f"vc-{n:02}", endpoint=f"vc{n:02}.dc.lan")

    def names(query):
        return [c.name for c in viewer_client.get(url("cloud_list") + query).context["clouds"]]

    assert names("?platform=ovirt") == ["engine"]
    assert names("?q=zv.lan") == ["engine"]
    assert names("?q=vc07") == ["vc-07"]
    assert names("?q=vc-1+dc.lan") == [f"vc-{n}" for n in range(10, 20)]
    assert names("?q=nothing") == []
    assert b"clouds-no-match" in viewer_client.get(url("cloud_list") + "?q=nothing").content
    assert len(names("")) == 25 and names("?page=2") == ["vc-24"]
    assert names("?platform=linux") == names("")  # not a cloud platform: ignored


@pytest.mark.parametrize(
    ("client_name", "button"), [("viewer_client", False), ("operator_client", True)]
)
def test_the_empty_state_points_to_the_wizard(request, customer, client_name, button):
    response = request.getfixturevalue(client_name).get(url("cloud_list"))
    content = response.content.decode()
    assert 'data-testid="clouds-empty"' in content
    assert (f'href="{url("wizard_start")}" data-testid="empty-register"' in content) is button


# --- The password never shows -------------------------------------------------------------


def test_no_page_shows_the_password_or_its_sealed_text(admin_client_, customer):
    cloud = make_cloud(customer)
    link = make_link(customer, platform="vmware", cloud=cloud).link
    sealed = stored(cloud).password_sealed
    pages = [
        url("cloud_list"),
        url("cloud_edit", cloud.pk),
        url("cloud_delete", cloud.pk),
        url("link_list"),
        url("link_detail", link.pk),
    ]
    for page in pages:
        content = admin_client_.get(page).content.decode()
        assert PASSWORD not in content and sealed not in content, page
        assert sealed[:20] not in content, page


# --- Edit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", [Role.VIEWER, Role.OPERATOR], indirect=True)
def test_only_admins_change_a_cloud(role_client, customer):
    cloud = make_cloud(customer)
    page = role_client.get(url("cloud_edit", cloud.pk))
    assert page.status_code == 200
    content = page.content.decode()
    assert "Changing a cloud needs the Admin role." in content
    assert all(field.field.disabled for field in page.context["cloud_form"])
    response = role_client.post(url("cloud_edit", cloud.pk), edit_data(cloud, name="x"))
    assert response.status_code == 403
    assert stored(cloud).name == "vcenter"


def test_admin_renames_without_a_check_and_keeps_the_password(admin_client_, customer):
    cloud = make_cloud(customer)  # never checked: its endpoint is not reachable
    sealed = stored(cloud).password_sealed
    response = admin_client_.post(
        url("cloud_edit", cloud.pk),
        edit_data(
            cloud,
            name="vcenter-prod",
            enforce_quiesce="on",
            on_replication_start="power_off",
            free_space_threshold_percent="15",
        ),
    )
    assert response.status_code == 302 and response["Location"] == url("cloud_list")
    cloud = stored(cloud)
    assert (cloud.name, cloud.enforce_quiesce, cloud.on_replication_start) == (
        "vcenter-prod",
        True,
        "power_off",
    )
    assert cloud.free_space_threshold_percent == 15
    assert cloud.password_sealed == sealed and cloud.checked_at is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "required"),
        ({"disk_storage_threshold_percent": "101"}, "disk_storage_threshold_percent", "100"),
        ({"free_space_threshold_percent": "-1"}, "free_space_threshold_percent", "0"),
        ({"on_replication_finish": "reboot"}, "on_replication_finish", "valid choice"),
    ],
)
def test_bad_input_is_a_form_error_and_changes_nothing(
    admin_client_, customer, changes, field, message
):
    cloud = make_cloud(customer)
    response = admin_client_.post(url("cloud_edit", cloud.pk), edit_data(cloud, **changes))
    assert response.status_code == 200
    assert message in " ".join(response.context["cloud_form"].errors[field])
    assert stored(cloud).updated_at == cloud.updated_at


def test_a_duplicate_name_is_refused_whatever_the_case(admin_client_, customer):
    make_cloud(customer, name="Primary")
    cloud = make_cloud(customer, name="secondary")
    response = admin_client_.post(url("cloud_edit", cloud.pk), edit_data(cloud, name="PRIMARY"))
    assert response.status_code == 200
    assert "already exists" in " ".join(response.context["cloud_form"].errors["name"])
    assert stored(cloud).name == "secondary"


def test_editing_an_ovirt_cloud_checks_it_against_the_engine(admin_client_, customer):
    with running_engine(password=PASSWORD) as engine:
        cloud = ovirt_cloud(customer, engine)
        checked_at = cloud.checked_at
        # A wrong new password: the engine refuses, the page says so, nothing changes.
        response = admin_client_.post(
            url("cloud_edit", cloud.pk),
            edit_data(cloud, name="renamed", password="Wr0ng-typed-pw", discovery_level="host"),
        )
        assert response.status_code == 200
        content = response.content.decode()
        assert "wrong login or password" in content
        assert 'data-testid="check-failed" data-kind="auth"' in content
        assert "Wr0ng-typed-pw" not in content and PASSWORD not in content
        assert (stored(cloud).name, stored(cloud).discovery_level) == ("zvirt", "cluster")
        # The discovery level changes with the stored password: checked again, saved.
        response = admin_client_.post(
            url("cloud_edit", cloud.pk), edit_data(cloud, discovery_level="host")
        )
        assert response.status_code == 302
        assert "The connection was checked" in texts(admin_client_.get(url("cloud_list")))[0]
    cloud = stored(cloud)
    assert cloud.discovery_level == "host" and cloud.checked_at > checked_at
    assert cloud_password(cloud) == PASSWORD


def test_an_undecryptable_password_asks_for_it_again(admin_client_, customer):
    with running_engine(password=PASSWORD) as engine:
        cloud = ovirt_cloud(customer, engine)
        Cloud.objects.for_customer(customer).filter(pk=cloud.pk).update(password_sealed="bogus")
        response = admin_client_.post(
            url("cloud_edit", cloud.pk), edit_data(cloud, discovery_level="datacenter")
        )
        assert "Enter the password again" in " ".join(
            response.context["cloud_form"].errors["password"]
        )
        response = admin_client_.post(
            url("cloud_edit", cloud.pk),
            edit_data(cloud, discovery_level="datacenter", password=PASSWORD),
        )
        assert response.status_code == 302
    assert cloud_password(stored(cloud)) == PASSWORD


@pytest.mark.vsphere
def test_an_untrusted_certificate_is_offered_then_trusted(admin_client_, customer):
    cloud = make_cloud(customer, login="acura")
    with running_vcsim(user="acura", password=PASSWORD) as (host, port):
        moved = edit_data(cloud, endpoint=f"{host}:{port}")
        response = admin_client_.post(url("cloud_edit", cloud.pk), moved)
        assert response.status_code == 200
        content = response.content.decode()
        fingerprint = response.context["offered_fingerprint"]
        assert fingerprint and f"Trust this certificate (SHA-256 <code>{fingerprint}</code>)" in (
            " ".join(content.split())
        )
        assert 'data-testid="trust-checkbox"' in content
        assert 'data-kind="tls"' in content and "is not trusted" in content
        assert stored(cloud).endpoint == "vcenter.example.test"
        # Ticked: the same post with the fingerprint is checked and saved, the pin kept.
        response = admin_client_.post(
            url("cloud_edit", cloud.pk), {**moved, "cloud-trust_fingerprint": fingerprint}
        )
        assert response.status_code == 302
    cloud = stored(cloud)
    assert cloud.endpoint == f"{host}:{port}" and cloud.tls_fingerprint == fingerprint
    assert cloud.check_ok and cloud.product.startswith("VMware")
    page = admin_client_.get(url("cloud_edit", cloud.pk)).content.decode()
    assert f'value="{fingerprint}"' in page and 'data-testid="pinned-certificate"' in page


# --- Delete -------------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", [Role.VIEWER, Role.OPERATOR], indirect=True)
def test_only_admins_delete(role_client, customer):
    cloud = make_cloud(customer)
    assert role_client.get(url("cloud_delete", cloud.pk)).status_code == 403
    assert role_client.post(url("cloud_delete", cloud.pk)).status_code == 403
    assert Cloud.objects.for_customer(customer).exists()


def test_delete_is_refused_while_agents_use_the_cloud(admin_client_, customer):
    cloud = make_cloud(customer)
    agent = enroll(customer, platform="vmware", cloud=cloud).agent
    page = admin_client_.get(url("cloud_delete", cloud.pk)).content.decode()
    assert 'data-testid="cloud-in-use"' in page and agent.display_id in page
    response = admin_client_.post(url("cloud_delete", cloud.pk), follow=True)
    assert "used by 1 agent" in texts(response)[0]
    assert Cloud.objects.for_customer(customer).filter(pk=cloud.pk).exists()


def test_admin_deletes_a_cloud_and_its_links_stop(admin_client_, customer):
    cloud = make_cloud(customer)
    new = make_link(customer, platform="vmware", cloud=cloud)
    page = admin_client_.get(url("cloud_delete", cloud.pk)).content.decode()
    assert "1 live download link stops" in page
    response = admin_client_.post(url("cloud_delete", cloud.pk), follow=True)
    assert "Cloud vcenter was deleted" in texts(response)[0]
    assert not Cloud.objects.for_customer(customer).exists()
    assert admin_client_.get(new.path).status_code in (404, 410)


# --- Test connection ----------------------------------------------------------------------


def test_viewers_cannot_test(viewer_client, customer):
    cloud = make_cloud(customer)
    assert viewer_client.post(url("cloud_test", cloud.pk)).status_code == 403
    assert viewer_client.get(url("cloud_test", cloud.pk)).status_code == 405


def test_operator_tests_the_connection_and_sees_the_outcome(operator_client, customer):
    with running_engine(password=PASSWORD) as engine:
        cloud = ovirt_cloud(customer, engine)
        response = operator_client.post(url("cloud_test", cloud.pk), follow=True)
        [message] = texts(response)
        assert message.startswith("Connection to zvirt (") and "works" in message
    response = operator_client.post(
        url("cloud_test", cloud.pk), {"next": url("cloud_edit", cloud.pk)}
    )
    assert response["Location"] == url("cloud_edit", cloud.pk)
    [message] = texts(operator_client.get(url("cloud_list")))
    assert message.startswith("Connection to zvirt failed: Cannot reach")
    assert stored(cloud).check_ok is False
    # Somewhere else is not a place to go back to.
    response = operator_client.post(url("cloud_test", cloud.pk), {"next": "https://evil.test/"})
    assert response["Location"] == url("cloud_list")


def test_testing_an_undecryptable_password_says_so(operator_client, customer):
    cloud = make_cloud(customer)
    Cloud.objects.for_customer(customer).filter(pk=cloud.pk).update(password_sealed="bogus")
    response = operator_client.post(url("cloud_test", cloud.pk), follow=True)
    assert "Enter the password again" in texts(response)[0]


# --- Download Replication Agent -----------------------------------------------------------


def test_operator_downloads_the_agent_of_a_cloud(operator_client, operator_user, customer, group):
    cloud = make_cloud(customer)
    response = operator_client.post(url("cloud_download", cloud.pk), {"group": group.pk})
    link = DownloadLink.objects.for_customer(customer).get()
    assert response["Location"] == url("link_detail", link.pk)
    assert (link.platform, link.cloud, link.group, link.network) == (
        "vmware",
        cloud,
        group,
        {"mode": "dhcp"},
    )
    assert link.server_url == "http://testserver" and link.created_by == operator_user
    page = operator_client.get(response["Location"]).content.decode()
    assert "http://testserver/download/acdl_" in page
    assert "curl -k -o hvragent-vmware-appliance.tar.gz" in page


def test_an_ovirt_cloud_gets_its_appliance_without_a_group(operator_client, customer):
    cloud = make_cloud(customer, name="engine", platform="ovirt")
    operator_client.post(url("cloud_download", cloud.pk))
    link = DownloadLink.objects.for_customer(customer).get()
    assert (link.platform, link.group, link.network) == ("ovirt", None, {})


def test_download_refuses_another_customers_group(operator_client, customer, other_customer):
    cloud = make_cloud(customer)
    theirs = MachineGroupFactory(customer=other_customer)
    for value in (theirs.pk, "x", "99999999999999999999"):
        response = operator_client.post(
            url("cloud_download", cloud.pk), {"group": value}, follow=True
        )
        assert texts(response) == ["Choose one of your groups."]
    assert not DownloadLink.objects.all_customers().exists()


def test_viewers_cannot_download(viewer_client, customer):
    cloud = make_cloud(customer)
    assert viewer_client.post(url("cloud_download", cloud.pk)).status_code == 403
    assert not DownloadLink.objects.all_customers().exists()


# --- Another customer's cloud -------------------------------------------------------------


@pytest.mark.parametrize("name", ACTIONS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_customers_cloud_is_a_404(
    admin_client_, stranger_client, other_customer, customer, name, method
):
    theirs = make_cloud(other_customer, name="theirs")
    ours = make_cloud(customer)
    # A member of acme asking for globex's cloud under acme's URL…
    assert getattr(admin_client_, method)(url(name, theirs.pk)).status_code == 404
    # …and a member of globex asking for acme's cloud.
    assert getattr(stranger_client, method)(url(name, ours.pk)).status_code == 404
    assert getattr(stranger_client, method)(url(name, ours.pk, slug="globex")).status_code == 404
    assert Cloud.objects.all_customers().count() == 2
    assert not DownloadLink.objects.all_customers().exists()
    assert stored(theirs).name == "theirs"
