"""Download links pages: the list (live/all, pagination, empty states), a link's page (its
URL and curl command for operators, the enrollment token's uses, the download log), revoking
it, for each role; another customer's link is a 404 everywhere."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clouds.models import DownloadLink, EnrollmentToken
from clouds.services import agent_enroll
from clouds.services.downloads import package_config
from tenants.models import Role

from .cloud_support import make_cloud, make_link

ROLES = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


def url(name, *args, slug="acme"):
    return reverse(f"clouds:{name}", args=[slug, *args])


def texts(response):
    return [str(m) for m in response.context["messages"]]


def expire(link):
    """Let the link and its enrollment token expire, as they do together."""
    past = timezone.now() - timedelta(minutes=1)
    DownloadLink.objects.for_customer(link.customer_id).filter(pk=link.pk).update(expires_at=past)
    EnrollmentToken.objects.for_customer(link.customer_id).filter(
        pk=link.enrollment_token_id
    ).update(expires_at=past)


def fresh(link):
    return DownloadLink.objects.for_customer(link.customer_id).get(pk=link.pk)


# --- The list -----------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ROLES, indirect=True)
def test_every_role_sees_the_list(role_client, customer, group, admin_user):
    cloud = make_cloud(customer)
    make_link(customer, platform="vmware", cloud=cloud, group=group, created_by=admin_user)
    make_link(customer, distro="rhel", driver="dkms")
    response = role_client.get(url("link_list"))
    assert response.status_code == 200
    assert [link.platform for link in response.context["links"]] == ["linux", "vmware"]
    content = " ".join(response.content.decode().split())
    for text in ("VMware vSphere", "Web servers", "vcenter", "DHCP", "CentOS/RHEL, DKMS", "Live"):
        assert text in content, text
    assert admin_user.username in content


def test_live_is_the_default_and_all_shows_ended_links(viewer_client, customer):
    live = make_link(customer, platform="windows").link
    expired = make_link(customer, platform="windows").link
    revoked = make_link(customer, platform="windows").link
    expire(expired)
    DownloadLink.objects.for_customer(customer).filter(pk=revoked.pk).update(
        revoked_at=timezone.now()
    )

    def states(query):
        links = viewer_client.get(url("link_list") + query).context["links"]
        return {link.pk: link.state for link in links}

    assert states("") == {live.pk: "live"}
    assert states("?state=all") == {live.pk: "live", expired.pk: "expired", revoked.pk: "revoked"}
    assert states("?state=bogus") == {live.pk: "live"}
    content = viewer_client.get(url("link_list") + "?state=all").content.decode()
    assert "Expired" in content and "Revoked" in content


def test_empty_states(viewer_client, customer):
    assert b'data-testid="links-empty"' in viewer_client.get(url("link_list")).content
    expire(make_link(customer, platform="windows").link)
    assert b'data-testid="links-none-live"' in viewer_client.get(url("link_list")).content


def test_pagination(viewer_client, customer):
    for _ in range(51):
        make_link(customer, platform="windows")
    first = viewer_client.get(url("link_list"))
    assert len(first.context["links"]) == 50
    assert len(viewer_client.get(url("link_list") + "?page=2").context["links"]) == 1
    assert b"Page 1 of 2" in first.content


def test_the_list_shows_only_the_customers_links(viewer_client, customer, other_customer):
    ours = make_link(customer, platform="windows").link
    theirs = make_link(other_customer, platform="windows").link
    response = viewer_client.get(url("link_list") + "?state=all")
    assert [link.pk for link in response.context["links"]] == [ours.pk]
    assert theirs.prefix.encode() not in response.content


# --- A link's page ------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", [Role.OPERATOR, Role.ADMIN], indirect=True)
def test_operators_see_the_url_the_curl_command_and_the_instructions(role_client, customer):
    new = make_link(customer, distro="rhel", driver="dkms")
    content = role_client.get(url("link_detail", new.link.pk)).content.decode()
    assert f'data-testid="link-url">{new.url}<' in content
    assert f"curl -k -o hlragent.rpm &#x27;{new.url}&#x27;" in content
    assert 'data-testid="protection-instructions"' in content
    assert "dkms" in content.lower()


def test_viewers_see_everything_but_the_url(viewer_client, customer):
    new = make_link(customer)
    response = viewer_client.get(url("link_detail", new.link.pk))
    content = response.content.decode()
    assert new.text not in content and new.link.prefix in content
    assert 'data-testid="link-url-hidden"' in content
    assert "hlragent.deb" in content and "Debian/Ubuntu" in content
    assert url("link_revoke", new.link.pk) not in content


def test_the_page_shows_the_tokens_uses_the_agents_and_the_download_log(
    operator_client, customer, group
):
    new = make_link(customer, group=group, max_agents=2)
    client = Client(HTTP_USER_AGENT="curl/8.5.0", REMOTE_ADDR="192.0.2.44")
    assert client.get(new.path).status_code == 200
    token = package_config(new.link, new.text.split(".", 1)[1])["enrollment_token"]
    agent = agent_enroll(token, hostname="db-01", version="1.0").agent
    expire(new.link)
    assert client.get(new.path).status_code == 410
    response = operator_client.get(url("link_detail", new.link.pk))
    content = " ".join(response.content.decode().split())
    assert 'data-testid="token-uses">1 of 2<' in content
    assert agent.display_id in content and "db-01" in content
    assert "This enrollment token has expired." in content
    assert 'data-testid="link-ended"' in content and new.text not in content
    events = response.context["events_page"].object_list
    assert [(e.served, e.remote_addr, e.user_agent) for e in events] == [
        (False, "192.0.2.44", "curl/8.5.0"),
        (True, "192.0.2.44", "curl/8.5.0"),
    ]
    assert "This download link has expired." in content and "Served" in content
    assert 'data-testid="link-downloads">1' in content


# --- Revoke -------------------------------------------------------------------------------


def test_viewers_cannot_revoke(viewer_client, customer):
    new = make_link(customer, platform="windows")
    assert viewer_client.post(url("link_revoke", new.link.pk)).status_code == 403
    assert fresh(new.link).revoked_at is None


def test_operator_revokes_a_link_and_its_token(operator_client, customer):
    new = make_link(customer, platform="windows")
    response = operator_client.post(url("link_revoke", new.link.pk), follow=True)
    assert response.redirect_chain[-1][0] == url("link_detail", new.link.pk)
    assert "was revoked" in texts(response)[0]
    link = fresh(new.link)
    assert link.revoked_at is not None and link.enrollment_token.revoked_at is not None
    assert Client().get(new.path).status_code == 410
    content = response.content.decode()
    assert new.text not in content and url("link_revoke", link.pk) not in content
    again = operator_client.post(url("link_revoke", new.link.pk), follow=True)
    assert "already revoked" in texts(again)[0]
    assert operator_client.get(url("link_revoke", new.link.pk)).status_code == 405


# --- Another customer's link --------------------------------------------------------------


@pytest.mark.parametrize("name", ["link_detail", "link_revoke"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_customers_link_is_a_404(
    admin_client_, stranger_client, customer, other_customer, name, method
):
    theirs = make_link(other_customer, platform="windows").link
    ours = make_link(customer, platform="windows").link
    assert getattr(admin_client_, method)(url(name, theirs.pk)).status_code == 404
    assert getattr(stranger_client, method)(url(name, ours.pk)).status_code == 404
    assert getattr(stranger_client, method)(url(name, ours.pk, slug="globex")).status_code == 404
    assert fresh(theirs).revoked_at is None and fresh(ours).revoked_at is None


def test_strangers_cannot_list_another_customers_links(stranger_client, customer):
    make_link(customer, platform="windows")
    assert stranger_client.get(url("link_list")).status_code == 404
