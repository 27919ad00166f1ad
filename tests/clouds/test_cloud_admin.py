"""The provider admin of clouds (a write-only password that is sealed on save), download
links (read-only, secrets never shown, a revoke action), the download log and wizard drafts."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from clouds.models import Cloud, DownloadEvent, DownloadLink, WizardDraft
from clouds.services.clouds import cloud_password
from clouds.services.downloads import download_link_serve

from .cloud_support import PASSWORD, make_cloud, make_link, raw_cloud_row
from .conftest import enroll


@pytest.fixture
def staff(db):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "x"))
    return client


def url(model, view, *args):
    return reverse(f"admin:clouds_{model._meta.model_name}_{view}", args=args)


def cloud_form(**changes) -> dict:
    data = {
        "name": "vcenter",
        "platform": "vmware",
        "endpoint": "vcenter.example.test",
        "login": "administrator@vsphere.local",
        "password": PASSWORD,
        "tls_fingerprint": "",
        "on_replication_start": "none",
        "on_replication_finish": "none",
        "disk_storage_threshold_percent": "0",
        "free_space_threshold_percent": "0",
        "discovery_level": "cluster",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def stored(cloud) -> Cloud:
    return Cloud.objects.for_customer(cloud.customer_id).get(pk=cloud.pk)


# --- Clouds -------------------------------------------------------------------------------


def test_a_cloud_added_in_the_admin_has_its_password_sealed(staff, customer):
    response = staff.post(url(Cloud, "add"), cloud_form(customer=customer.pk))
    assert response.status_code == 302, response.content.decode()[:3000]
    cloud = Cloud.objects.for_customer(customer).get()
    assert cloud_password(cloud) == PASSWORD
    assert PASSWORD not in raw_cloud_row(cloud)
    assert cloud.checked_at is None  # staff may register a platform it cannot reach yet
    page = staff.get(url(Cloud, "change", cloud.pk)).content.decode()
    assert PASSWORD not in page and cloud.password_sealed not in page
    assert "Stored (sealed)" in page
    assert PASSWORD not in staff.get(url(Cloud, "changelist")).content.decode()


def test_the_admin_keeps_the_password_when_empty_and_replaces_it_when_given(staff, customer):
    cloud = make_cloud(customer)
    sealed = stored(cloud).password_sealed
    response = staff.post(url(Cloud, "change", cloud.pk), cloud_form(password="", login="root"))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert stored(cloud).password_sealed == sealed and stored(cloud).login == "root"
    staff.post(url(Cloud, "change", cloud.pk), cloud_form(password="N3w-admin-pw"))
    assert cloud_password(stored(cloud)) == "N3w-admin-pw"
    assert "N3w-admin-pw" not in raw_cloud_row(cloud)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"password": ""}, "password", "required"),
        ({"platform": "linux"}, "platform", "valid choice"),
        ({"name": "VCENTER"}, "name", "already has a cloud"),
        ({"disk_storage_threshold_percent": "101"}, "disk_storage_threshold_percent", "0 to 100"),
        ({"free_space_threshold_percent": "-1"}, "free_space_threshold_percent", ""),
    ],
)
def test_the_add_form_refuses_bad_values(staff, customer, changes, field, message):
    make_cloud(customer, name="vcenter")
    response = staff.post(url(Cloud, "add"), cloud_form(customer=customer.pk, **changes))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert Cloud.objects.for_customer(customer).count() == 1


def test_the_cloud_list_filters_by_platform_customer_and_check(staff, customer, other_customer):
    make_cloud(customer, name="vc")
    make_cloud(other_customer, name="engine", platform="ovirt")

    def names(query):
        response = staff.get(url(Cloud, "changelist") + query)
        assert response.status_code == 200
        return sorted(c.name for c in response.context["cl"].result_list)

    assert names("") == ["engine", "vc"]
    assert names("?platform=ovirt") == ["engine"]
    assert names(f"?customer__id__exact={customer.pk}") == ["vc"]
    assert names("?check=never") == ["engine", "vc"]
    assert names("?check=ok") == []


def test_the_admin_does_not_delete_a_cloud_agents_use(staff, customer):
    cloud = make_cloud(customer)
    enroll(customer, platform="vmware", cloud=cloud)
    response = staff.post(url(Cloud, "delete", cloud.pk), {"post": "yes"})
    assert response.status_code == 200  # the confirmation page lists what protects it
    assert Cloud.objects.for_customer(customer).exists()
    response = staff.post(
        url(Cloud, "changelist"),
        {"action": "delete_selected", "_selected_action": [cloud.pk], "post": "yes"},
        follow=True,
    )
    assert Cloud.objects.for_customer(customer).exists()


# --- Download links, their log, wizard drafts ---------------------------------------------


def test_download_links_are_read_only_and_never_show_their_secret(staff, customer):
    new = make_link(customer, platform="windows")
    link = new.link
    secret = new.text.split(".", 1)[1]
    for page in (url(DownloadLink, "changelist"), url(DownloadLink, "change", link.pk)):
        response = staff.get(page)
        assert response.status_code == 200
        content = response.content.decode()
        assert link.prefix in content
        assert secret not in content and link.text_sealed not in content
        assert link.secret_hash not in content
    assert staff.get(url(DownloadLink, "add")).status_code == 403
    staff.post(url(DownloadLink, "change", link.pk), {"server_url": "http://evil.test"})
    assert DownloadLink.objects.for_customer(customer).get().server_url == "http://testserver"


def test_the_revoke_action_stops_links_and_their_tokens(staff, customer):
    links = [make_link(customer, platform="windows").link for _ in range(2)]
    response = staff.post(
        url(DownloadLink, "changelist"),
        {"action": "revoke", "_selected_action": [link.pk for link in links]},
        follow=True,
    )
    assert "2 download link(s) revoked." in response.content.decode()
    for link in DownloadLink.objects.for_customer(customer).select_related("enrollment_token"):
        assert link.revoked_at is not None and link.enrollment_token.revoked_at is not None
    response = staff.get(url(DownloadLink, "changelist") + "?state=revoked")
    assert len(response.context["cl"].result_list) == 2
    assert not staff.get(url(DownloadLink, "changelist") + "?state=live").context["cl"].result_list


def test_download_events_and_wizard_drafts_are_shown_read_only(staff, customer, admin_user):
    new = make_link(customer, platform="windows")
    download_link_serve(new.text, remote_addr="192.0.2.1", user_agent="curl")
    event = DownloadEvent.objects.for_customer(customer).get()
    draft = WizardDraft.objects.create(
        customer=customer, user=admin_user, platform="linux", step=3, data={"distro": "rhel"}
    )
    for model, obj in ((DownloadEvent, event), (WizardDraft, draft)):
        assert staff.get(url(model, "changelist")).status_code == 200
        page = staff.get(url(model, "change", obj.pk))
        assert page.status_code == 200
        assert staff.get(url(model, "add")).status_code == 403
    assert "192.0.2.1" in staff.get(url(DownloadEvent, "changelist")).content.decode()
    staff.post(url(WizardDraft, "delete", draft.pk), {"post": "yes"})
    assert not WizardDraft.objects.for_customer(customer).exists()
