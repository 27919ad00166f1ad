"""The Register new platform wizard over HTTP: the Linux and Windows runs end to end (down to
the package download), server-side state (refresh, Back, two tabs, resume, discard), the step
guard, roles, bad input that changes nothing, and other users' and customers' runs as 404."""

import io
import zipfile

import pytest
from django.urls import reverse

from clouds.models import DownloadLink, EnrollmentToken, WizardDraft
from protection.models import MachineGroup

from .wizard_support import (
    accept_requirements,
    errors,
    link_path,
    options,
    start,
    start_url,
    step_url,
)


def seal_under(secret: str) -> str:
    from clouds.crypto import _fernet

    return _fernet(secret).encrypt(b"acdl_x.y").decode()


def links(customer):
    return DownloadLink.objects.for_customer(customer)


def test_the_linux_run_from_platform_to_package(operator_client, customer):
    page = operator_client.get(start_url())
    assert page.status_code == 200
    for label in ("VMware vSphere", "oVirt/zVirt", "Linux", "Windows"):
        assert label in page.content.decode()
    draft = start(operator_client, "linux")
    requirements = operator_client.get(step_url(draft, 2)).content.decode()
    assert "sudo permissions for installation" in requirements
    assert "udp/12201" in requirements and "500 MB RAM" in requirements
    accept_requirements(operator_client, draft)
    step3 = operator_client.get(step_url(draft, 3)).content.decode()
    assert "Show supported kernels" in step3 and "6.1.0-18-amd64" in step3
    response = options(
        operator_client,
        draft,
        {"new_group": "Linux hosts", "distro": "debian", "driver": "dkms"},
    )
    assert response["Location"] == step_url(draft, 4)
    group = MachineGroup.objects.for_customer(customer).get(name="Linux hosts")
    link = links(customer).get()
    assert (link.platform, link.distro, link.driver, link.group) == (
        "linux",
        "debian",
        "dkms",
        group,
    )
    step4 = operator_client.get(step_url(draft, 4)).content.decode()
    path = link_path(step4)
    assert f"curl -k -o hlragent.deb &#x27;http://testserver{path}&#x27;" in step4
    assert "linux-headers-amd64" in step4 and "linux-headers-generic" in step4
    assert "kernel-devel-$(uname -r)" in step4
    assert "dpkg -i hlragent.deb" in step4 and "rpm -i hlragent.rpm" in step4
    download = operator_client.get(path)
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="hlragent.deb"'
    body = b"".join(download.streaming_content)
    assert body.startswith(b"!<arch>\ndebian-binary")
    link.refresh_from_db()
    assert link.downloads == 1
    token = EnrollmentToken.objects.for_customer(customer).get(pk=link.enrollment_token_id)
    assert (token.platform, token.group) == ("linux", group)
    finish = operator_client.post(step_url(draft, 4), {"action": "finish"})
    assert finish["Location"] == reverse("protection:group_detail", args=["acme", group.pk])
    draft.refresh_from_db()
    assert draft.finished_at is not None
    assert not operator_client.get(start_url()).context["open_drafts"]


def test_the_windows_run_gives_a_zip_with_the_msi(operator_client, customer, group):
    draft = start(operator_client, "windows")
    requirements = operator_client.get(step_url(draft, 2)).content.decode()
    assert "Microsoft .NET Framework 4.0" in requirements and "x64 processor" in requirements
    accept_requirements(operator_client, draft)
    assert options(operator_client, draft, {"group": group.pk})["Location"] == step_url(draft, 4)
    step4 = operator_client.get(step_url(draft, 4)).content.decode()
    assert "run <code>hwragent.msi</code>" in step4
    download = operator_client.get(link_path(step4))
    body = b"".join(download.streaming_content)
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert "hwragent.msi" in names


def test_refresh_and_back_keep_the_choices_and_the_link(operator_client, customer, group):
    draft = start(operator_client, "linux")
    accept_requirements(operator_client, draft)
    options(operator_client, draft, {"group": group.pk, "distro": "rhel", "driver": "prebuilt"})
    first = link_path(operator_client.get(step_url(draft, 4)).content.decode())
    assert link_path(operator_client.get(step_url(draft, 4)).content.decode()) == first
    back = operator_client.get(step_url(draft, 3))
    form = back.context["linux_form"]
    assert (form["distro"].value(), form["driver"].value()) == ("rhel", "prebuilt")
    assert back.context["group_form"]["group"].value() == group.pk
    # The same options again: the same link. Different ones: a new link, the old one revoked.
    options(operator_client, draft, {"group": group.pk, "distro": "rhel", "driver": "prebuilt"})
    assert link_path(operator_client.get(step_url(draft, 4)).content.decode()) == first
    options(operator_client, draft, {"group": group.pk, "distro": "rhel", "driver": "dkms"})
    second = link_path(operator_client.get(step_url(draft, 4)).content.decode())
    assert second != first
    assert operator_client.get(first).status_code == 410
    assert operator_client.get(second).status_code == 200
    assert links(customer).filter(revoked_at__isnull=True).count() == 1


def test_two_tabs_are_two_runs(operator_client, customer, group):
    linux = start(operator_client, "linux")
    windows = start(operator_client, "windows")
    accept_requirements(operator_client, linux)
    accept_requirements(operator_client, windows)
    options(operator_client, windows, {"group": group.pk})
    options(operator_client, linux, {"group": group.pk, "distro": "debian", "driver": "prebuilt"})
    linux.refresh_from_db()
    windows.refresh_from_db()
    assert (linux.link.platform, windows.link.platform) == ("linux", "windows")
    assert "hlragent.deb" in operator_client.get(step_url(linux, 4)).content.decode()
    assert "hwragent.msi" in operator_client.get(step_url(windows, 4)).content.decode()


def test_steps_not_reached_redirect_to_the_furthest_step(operator_client):
    draft = start(operator_client, "linux")
    for step in (3, 4):
        assert operator_client.get(step_url(draft, step))["Location"] == step_url(draft, 2)
        assert operator_client.post(step_url(draft, step), {})["Location"] == step_url(draft, 2)
    assert operator_client.get(step_url(draft, 1)).status_code == 200
    assert operator_client.get(step_url(draft, 9))["Location"] == step_url(draft, 1)


def test_changing_the_platform_forgets_its_options_and_revokes_the_link(
    operator_client, customer, group
):
    draft = start(operator_client, "linux")
    accept_requirements(operator_client, draft)
    options(operator_client, draft, {"group": group.pk, "distro": "debian", "driver": "prebuilt"})
    old = links(customer).get()
    response = operator_client.post(step_url(draft, 1), {"platform": "windows"})
    assert response["Location"] == step_url(draft, 2)
    draft.refresh_from_db()
    old.refresh_from_db()
    assert (draft.platform, draft.step, draft.data, draft.link) == ("windows", 2, {}, None)
    assert old.revoked_at is not None
    assert draft.group == group  # the group choice stays


def test_unfinished_runs_can_be_resumed_or_discarded(operator_client, customer):
    draft = start(operator_client, "windows")
    page = operator_client.get(start_url()).content.decode()
    assert step_url(draft, 2) in page and 'data-testid="draft-discard"' in page
    response = operator_client.post(reverse("clouds:wizard_discard", args=["acme", draft.pk]))
    assert response["Location"] == start_url()
    assert not WizardDraft.objects.for_customer(customer).exists()


def test_the_group_page_preselects_its_group(operator_client, customer, group):
    page = operator_client.get(reverse("protection:group_detail", args=["acme", group.pk]))
    assert f"{start_url()}?group={group.pk}" in page.content.decode()
    start_page = operator_client.get(start_url(), {"group": group.pk}).content.decode()
    assert 'data-testid="preselected-group"' in start_page and group.name in start_page
    draft = start(operator_client, "windows", group=group.pk)
    assert draft.group == group
    accept_requirements(operator_client, draft)
    assert (
        operator_client.get(step_url(draft, 3)).context["group_form"]["group"].value() == group.pk
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "Choose a group or give the name of a new one."),
        ({"new_group": "Web servers", "distro": "debian", "driver": "dkms"}, "already exists"),
        ({"group": 999999, "distro": "debian", "driver": "dkms"}, "Choose one of your groups."),
        ({"new_group": "X", "distro": "arch", "driver": "dkms"}, "Select a valid choice"),
        ({"new_group": "X", "distro": "debian"}, "Select the driver deployment type."),
    ],
)
def test_bad_options_change_nothing(operator_client, customer, group, data, message):
    draft = start(operator_client, "linux")
    accept_requirements(operator_client, draft)
    response = options(operator_client, draft, data)
    assert response.status_code == 200
    assert message in errors(response) or message in response.content.decode()
    draft.refresh_from_db()
    assert draft.step == 3 and draft.link is None
    assert list(MachineGroup.objects.for_customer(customer)) == [group]
    assert not links(customer).exists()


def test_an_unknown_platform_is_refused(operator_client, customer):
    response = operator_client.post(start_url(), {"platform": "solaris"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not WizardDraft.objects.for_customer(customer).exists()


def test_viewers_see_the_wizard_but_cannot_start_it(viewer_client, customer):
    assert viewer_client.get(start_url()).status_code == 200
    assert viewer_client.post(start_url(), {"platform": "linux"}).status_code == 403
    assert not WizardDraft.objects.for_customer(customer).exists()


def test_another_users_run_is_a_404(operator_client, customer, admin_client_):
    draft = start(operator_client, "linux")
    assert admin_client_.get(step_url(draft, 2)).status_code == 404
    assert (
        admin_client_.post(reverse("clouds:wizard_discard", args=["acme", draft.pk])).status_code
        == 404
    )


def test_another_customers_run_is_a_404(operator_client, stranger_client, customer):
    draft = start(operator_client, "linux")
    for step in (1, 2, 3, 4):
        assert stranger_client.get(step_url(draft, step)).status_code == 404
        assert stranger_client.get(step_url(draft, step, slug="globex")).status_code == 404
    assert (
        stranger_client.post(
            reverse("clouds:wizard_discard", args=["globex", draft.pk])
        ).status_code
        == 404
    )
    assert WizardDraft.objects.for_customer(customer).filter(pk=draft.pk).exists()


def test_an_expired_link_can_be_renewed_from_step_4(operator_client, customer, group):
    draft = start(operator_client, "windows")
    accept_requirements(operator_client, draft)
    options(operator_client, draft, {"group": group.pk})
    old = links(customer).get()
    DownloadLink.objects.for_customer(customer).filter(pk=old.pk).update(expires_at=old.created_at)
    page = operator_client.get(step_url(draft, 4)).content.decode()
    assert "This download link has expired." in page and 'data-testid="renew-link"' in page
    assert operator_client.post(step_url(draft, 4), {"action": "renew"})["Location"] == step_url(
        draft, 4
    )
    new_path = link_path(operator_client.get(step_url(draft, 4)).content.decode())
    assert operator_client.get(new_path).status_code == 200


def test_a_link_sealed_under_a_lost_key_is_replaced_not_a_crash(operator_client, customer, group):
    draft = start(operator_client, "windows")
    accept_requirements(operator_client, draft)
    options(operator_client, draft, {"group": group.pk})
    # As if SECRET_KEY had changed without the old one in SECRET_KEY_FALLBACKS.
    links(customer).update(text_sealed=seal_under("another secret key"))
    page = operator_client.get(step_url(draft, 4))
    assert page.status_code == 200
    assert "can no longer be shown" in page.content.decode()
    assert operator_client.post(step_url(draft, 4), {"action": "renew"})["Location"] == step_url(
        draft, 4
    )
    assert link_path(operator_client.get(step_url(draft, 4)).content.decode())
