"""Download links: what a link may be made for, serving (counted and logged, the package built
once and reused), refusals (expired, revoked, unknown), revoking, and dropping the cached
packages of links that ended. Packages are built by the real tools (dpkg-deb)."""

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from clouds.models import DownloadEvent, DownloadLink, EnrollmentToken
from clouds.services.downloads import (
    DownloadRefused,
    download_link_create,
    download_link_revoke,
    download_link_serve,
    download_link_url,
    download_links_cleanup,
)
from tests.factories import MachineGroupFactory

from .cloud_support import make_cloud, make_link


def events(link):
    return list(DownloadEvent.objects.for_customer(link.customer_id).filter(link=link))


def fresh(link) -> DownloadLink:
    return DownloadLink.objects.for_customer(link.customer_id).get(pk=link.pk)


def cache_entries(settings, link) -> list[Path]:
    folder = Path(settings.PACKAGE_CACHE_DIR) / link.prefix
    return sorted(folder.iterdir()) if folder.exists() else []


# --- Making a link ------------------------------------------------------------------------


def test_a_link_is_bound_to_its_customer_and_token(customer, group, admin_user):
    new = make_link(customer, group=group, created_by=admin_user, expires_hours=6, max_agents=3)
    link = fresh(new.link)
    assert new.url == f"http://testserver/download/{new.text}/" == download_link_url(link)
    assert new.text.startswith(f"acdl_{link.prefix}.")
    assert new.text not in link.text_sealed and new.text.split(".")[1] not in link.secret_hash
    token = link.enrollment_token
    assert (token.customer, token.group, token.platform, token.max_uses) == (
        customer,
        group,
        "linux",
        3,
    )
    assert token.expires_at == link.expires_at
    assert 5.9 < (link.expires_at - timezone.now()).total_seconds() / 3600 <= 6
    assert (link.distro, link.driver, link.created_by) == ("debian", "prebuilt", admin_user)


@pytest.mark.parametrize(
    ("platform", "kwargs", "field"),
    [
        ("os2", {}, "platform"),
        ("linux", {"distro": "", "driver": "prebuilt"}, "distro"),
        ("linux", {"distro": "arch", "driver": "prebuilt"}, "distro"),
        ("linux", {"distro": "debian", "driver": ""}, "driver"),
        ("windows", {"distro": "debian"}, "distro"),
        ("windows", {"network": {"mode": "dhcp"}}, "network"),
        ("vmware", {}, "cloud"),
        ("ovirt", {}, "cloud"),
        ("windows", {"expires_hours": 0}, "expires_hours"),
        ("windows", {"expires_hours": 24 * 91}, "expires_hours"),
        ("windows", {"max_agents": 0}, "max_agents"),
        ("windows", {"max_agents": "2"}, "max_agents"),
        ("windows", {"server_url": "ftp://portal"}, "server_url"),
        ("windows", {"server_url": ""}, "server_url"),
    ],
)
def test_bad_options_make_no_link(customer, platform, kwargs, field):
    kwargs = dict(kwargs)
    with pytest.raises(ValidationError) as refused:
        download_link_create(
            customer, platform=platform, server_url=kwargs.pop("server_url", "http://x"), **kwargs
        )
    assert field in refused.value.message_dict, refused.value.message_dict
    assert not DownloadLink.objects.all_customers().exists()
    assert not EnrollmentToken.objects.all_customers().exists()


def test_cloud_and_group_must_be_the_customers_and_match(customer, other_customer):
    vcenter = make_cloud(customer)
    theirs = make_cloud(other_customer, name="theirs")
    engine = make_cloud(customer, name="engine", platform="ovirt")
    their_group = MachineGroupFactory(customer=other_customer)
    cases = [
        ({"platform": "vmware", "cloud": theirs}, "cloud"),
        ({"platform": "vmware", "cloud": engine}, "cloud"),
        ({"platform": "windows", "cloud": vcenter}, "cloud"),
        ({"platform": "windows", "group": their_group}, "group"),
        (
            {"platform": "vmware", "cloud": vcenter, "network": {"mode": "static", "ip": "x"}},
            "network_ip",
        ),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as refused:
            download_link_create(customer, server_url="http://x", **kwargs)
        assert field in refused.value.message_dict, (kwargs, refused.value.message_dict)
    assert not DownloadLink.objects.all_customers().exists()


def test_vmware_link_keeps_the_static_network(customer):
    network = {
        "mode": "static",
        "ip": "172.22.6.230",
        "netmask": "255.255.0.0",
        "gateway": "172.22.1.2",
        "dns": "1.1.1.1, 2.2.2.2",
    }
    link = make_link(customer, platform="vmware", cloud=make_cloud(customer), network=network)
    assert fresh(link.link).network == {**network, "dns": ["1.1.1.1", "2.2.2.2"]}


# --- Serving ------------------------------------------------------------------------------


def test_each_download_is_counted_logged_and_built_once(customer, settings):
    new = make_link(customer)
    first = download_link_serve(new.text, remote_addr="192.0.2.7", user_agent="curl/8.0")
    assert first.filename == "hlragent.deb" and first.size == first.path.stat().st_size > 0
    info = subprocess.run(
        ["dpkg-deb", "--info", str(first.path)], capture_output=True, text=True, check=True
    )
    assert "Package: hlragent" in info.stdout
    built_at = first.path.stat().st_mtime_ns
    [build] = cache_entries(settings, new.link)
    second = download_link_serve(new.text, remote_addr="2001:db8::1", user_agent="Wget")
    assert second.path == first.path and second.path.stat().st_mtime_ns == built_at
    assert cache_entries(settings, new.link) == [build]  # reused, not rebuilt
    link = fresh(new.link)
    assert link.downloads == 2 and link.last_downloaded_at is not None
    newest, oldest = events(link)
    assert (oldest.served, oldest.remote_addr, oldest.user_agent, oldest.size) == (
        True,
        "192.0.2.7",
        "curl/8.0",
        first.size,
    )
    assert (newest.remote_addr, newest.user_agent) == ("2001:db8::1", "Wget")


@pytest.mark.parametrize("ending", ["expired", "revoked"])
def test_an_ended_link_is_refused_and_logged(customer, ending):
    new = make_link(customer, platform="windows")
    if ending == "expired":
        DownloadLink.objects.for_customer(customer).filter(pk=new.link.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    else:
        download_link_revoke(new.link)
    with pytest.raises(DownloadRefused) as refused:
        download_link_serve(new.text, remote_addr="192.0.2.9", user_agent="curl")
    assert refused.value.status == 410 and ending in refused.value.message
    [event] = events(new.link)
    assert (event.served, event.remote_addr, event.size) == (False, "192.0.2.9", 0)
    assert ending in event.detail
    assert fresh(new.link).downloads == 0


def test_unknown_or_forged_links_are_refused_without_a_trace(customer):
    new = make_link(customer, platform="windows")
    forged = new.text[:-4] + ("AAAA" if not new.text.endswith("AAAA") else "BBBB")
    for text in ("nonsense", "acdl_nope.secret", forged):
        with pytest.raises(DownloadRefused) as refused:
            download_link_serve(text)
        assert refused.value.status == 404
    assert not DownloadEvent.objects.all_customers().exists()


def test_an_inactive_customers_link_serves_nothing(customer):
    new = make_link(customer, platform="windows")
    customer.is_active = False
    customer.save()
    with pytest.raises(DownloadRefused) as refused:
        download_link_serve(new.text)
    assert refused.value.status == 404


# --- Revoking and cleaning up ------------------------------------------------------------


def test_revoke_stops_the_link_and_its_token_and_drops_the_cache(customer, settings):
    new = make_link(customer)
    download_link_serve(new.text)
    assert cache_entries(settings, new.link)
    assert download_link_revoke(new.link) is True
    assert download_link_revoke(new.link) is False  # twice is harmless
    link = fresh(new.link)
    assert link.revoked_at is not None and link.enrollment_token.revoked_at is not None
    assert link.enrollment_token.refusal() == "This enrollment token was revoked."
    assert not cache_entries(settings, link)


def test_cleanup_drops_the_caches_of_ended_links_only(customer, settings):
    live, expired, revoked = (make_link(customer) for _ in range(3))
    for new in (live, expired, revoked):
        download_link_serve(new.text)
    DownloadLink.objects.for_customer(customer).filter(pk=expired.link.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    DownloadLink.objects.for_customer(customer).filter(pk=revoked.link.pk).update(
        revoked_at=timezone.now()
    )
    assert download_links_cleanup() == 2
    assert cache_entries(settings, live.link)
    assert not cache_entries(settings, expired.link) and not cache_entries(settings, revoked.link)
    assert download_links_cleanup() == 0
