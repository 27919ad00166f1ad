"""The customer API of download links: make one, fetch its package through the URL it
answers, list, read, revoke; roles (the URL is for operators and admins only) and isolation."""

import io
import tarfile
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clouds.models import DownloadLink, EnrollmentToken
from tenants.models import Role
from tests.factories import MachineGroupFactory

from .cloud_support import make_cloud, make_link
from .conftest import client_of, error_of

pytestmark = pytest.mark.django_db

BASE = "/api/v1/c/acme/download-links/"
EVERYONE = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


def rows(customer):
    links = DownloadLink.objects.for_customer(customer)
    tokens = EnrollmentToken.objects.for_customer(customer)
    return sorted(links.values_list("id", "revoked_at")), tokens.count()


def test_operator_makes_a_vmware_link_and_its_url_serves_the_appliance(operator, customer, group):
    cloud = make_cloud(customer)
    body = {"platform": "vmware", "cloud": cloud.pk, "group": group.pk, "max_agents": 2,
            "expires_hours": 5, "network": {"mode": "dhcp"}}  # fmt: skip
    response = operator.post(BASE, body, format="json", HTTP_HOST="localhost:8443")
    assert response.status_code == 201, response.content
    link = response.json()
    assert link["url"].startswith("http://localhost:8443/download/acdl_")
    assert (link["state"], link["cloud_name"], link["group_name"]) == (
        "live",
        "vcenter",
        group.name,
    )
    assert (link["max_agents"], link["enrollment_uses"], link["downloads"]) == (2, 0, 0)
    assert link["curl_command"] == f"curl -k -o {link['filename']} '{link['url']}'"
    stored = DownloadLink.objects.for_customer(customer).get(pk=link["id"])
    assert stored.server_url == "http://localhost:8443"
    assert timedelta(hours=4.9) < stored.expires_at - timezone.now() <= timedelta(hours=5)

    package = APIClient().get(link["url"].removeprefix("http://localhost:8443"))
    assert package.status_code == 200
    data = b"".join(package.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert any(name.endswith(".json") for name in archive.getnames())
    assert link["filename"] in package["Content-Disposition"]
    again = operator.get(f"{BASE}{link['id']}/").json()
    assert again["downloads"] == 1 and again["url"] == link["url"]


def test_a_linux_link_builds_the_deb(operator):
    body = {"platform": "linux", "distro": "debian", "driver": "dkms"}
    link = operator.post(BASE, body, format="json").json()
    assert link["filename"] == "hlragent.deb" and link["network"] == {}
    package = APIClient().get(link["url"].removeprefix("http://testserver"))
    assert package.status_code == 200
    assert b"".join(package.streaming_content).startswith(b"!<arch>\ndebian-binary")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "vmware"}, "cloud"),
        ({"platform": "ovirt", "cloud": "VMWARE"}, "cloud"),  # a VMware cloud
        ({"platform": "vmware", "cloud": "FOREIGN"}, "cloud"),
        ({"platform": "linux", "group": "FOREIGN"}, "group"),
        ({"platform": "linux", "distro": "arch"}, "distro"),
        ({"platform": "linux"}, "distro"),
        ({"platform": "windows", "expires_hours": 0}, "expires_hours"),
        ({"platform": "windows", "max_agents": 10_001}, "max_agents"),
        ({"platform": "vmware", "cloud": "VMWARE", "network": {"mode": "static"}}, "network_ip"),
        ({"platform": "windows", "network": {"mode": "dhcp"}}, "network"),
        ({"platform": "solaris"}, "platform"),
    ],
)
def test_bad_links_are_400_and_make_nothing(operator, customer, other_customer, body, field):
    ids = {"VMWARE": make_cloud(customer).pk, "FOREIGN": make_cloud(other_customer).pk}
    if body.get("group") == "FOREIGN":
        ids["FOREIGN"] = MachineGroupFactory(customer=other_customer).pk
    body = {key: ids.get(value, value) if isinstance(value, str) else value
            for key, value in body.items()}  # fmt: skip
    before = rows(customer)
    error = error_of(operator.post(BASE, body, format="json"), 400)
    assert field in error["details"], error
    if body.get(field) == ids["FOREIGN"]:  # another customer's id reads as unknown
        assert "does not exist" in str(error["details"][field])
    assert rows(customer) == before


@pytest.mark.parametrize("member", EVERYONE, indirect=True)
def test_every_role_lists_and_reads_links_but_only_writers_see_the_url(member, customer):
    live = make_link(customer)
    expired = make_link(customer, platform="windows")
    DownloadLink.objects.for_customer(customer).filter(pk=expired.link.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    listed = member.get(BASE).json()
    assert [row["id"] for row in listed["results"]] == [live.link.pk]
    every = member.get(BASE + "?state=all").json()["results"]
    assert [(r["id"], r["state"]) for r in every] == [
        (expired.link.pk, "expired"),
        (live.link.pk, "live"),
    ]
    assert member.get(BASE + "?state=expired").json()["count"] == 1
    response = member.get(f"{BASE}{live.link.pk}/")
    one = response.json()
    if member.get("/api/v1/customers/acme/").json()["role"] == Role.VIEWER:
        assert one["url"] is None and one["curl_command"] is None
        assert live.text.encode() not in response.content + member.get(BASE).content
    else:
        assert one["url"] == live.url and live.url in one["curl_command"]
    assert member.get(f"{BASE}{expired.link.pk}/").json()["url"] is None
    assert one["filename"] == "hlragent.deb" and one["enrollment_uses"] == 0


def test_a_bad_state_filter_is_400(viewer):
    assert "state" in error_of(viewer.get(BASE + "?state=dead"), 400)["details"]


def test_revoke_stops_the_link_and_its_token(operator, viewer, customer):
    new = make_link(customer)
    error_of(viewer.post(f"{BASE}{new.link.pk}/revoke/"), 403)
    error_of(viewer.post(BASE, {"platform": "windows"}, format="json"), 403)
    assert rows(customer) == ([(new.link.pk, None)], 1)
    response = operator.post(f"{BASE}{new.link.pk}/revoke/")
    assert response.status_code == 200, response.content
    assert (response.json()["state"], response.json()["url"]) == ("revoked", None)
    assert response.json()["revoked_at"]
    token = EnrollmentToken.objects.for_customer(customer).get()
    assert token.revoked_at is not None
    assert APIClient().get(new.path).status_code == 410
    assert operator.post(f"{BASE}{new.link.pk}/revoke/").status_code == 200  # harmless again


def test_another_customers_link_is_404_for_every_role_route_and_method(customer, other_customer):
    theirs = make_link(other_customer)
    mine = make_link(customer)
    before = rows(other_customer)
    stranger = client_of(other_customer, Role.ADMIN)
    routes = [("get", ""), ("put", ""), ("patch", ""), ("delete", ""), ("post", ""),
              ("post", "revoke/"), ("get", "revoke/")]  # fmt: skip
    for role in EVERYONE:
        client = client_of(customer, role)
        for method, suffix in routes:
            response = getattr(client, method)(
                f"{BASE}{theirs.link.pk}/{suffix}", {}, format="json"
            )
            if response.status_code == 403:  # the role is refused before any lookup
                assert role == Role.VIEWER and method != "get"
                continue
            error_of(response, 404)
    for method, suffix in routes:
        response = getattr(stranger, method)(f"{BASE}{mine.link.pk}/{suffix}", {}, format="json")
        error_of(response, 404)
        assert mine.text.encode() not in response.content
    error_of(stranger.get(BASE), 404)
    error_of(stranger.post(BASE, {"platform": "windows"}, format="json"), 404)
    assert rows(other_customer) == before
    # Updates and deletes do not exist for links (405 on one's own).
    assert client_of(customer, Role.ADMIN).delete(f"{BASE}{mine.link.pk}/").status_code == 405
