"""``create_download_link`` (the URL is the last line, and it downloads) and
``revoke_download_link`` (by prefix, link text or URL)."""

import io
import json
import subprocess
import tarfile
import urllib.parse
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from clouds.models import DownloadEvent, DownloadLink, EnrollmentToken
from tests.factories import MachineGroupFactory

from .cloud_support import make_cloud


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def create(*args) -> list[str]:
    return run("create_download_link", "--customer", "acme", *args)


def path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def only_link(customer) -> DownloadLink:
    return DownloadLink.objects.for_customer(customer).select_related("enrollment_token").get()


def test_linux_link_prints_the_url_last_and_the_url_downloads_the_deb(customer, group, tmp_path):
    lines = create(
        "--platform",
        "linux",
        "--distro",
        "debian",
        "--driver",
        "dkms",
        "--group",
        "Web servers",
        "--expires-hours",
        "5",
        "--agents",
        "3",
        "--server-url",
        "https://portal.example.test/",
    )
    url = lines[-1]
    link = only_link(customer)
    assert url.startswith(f"https://portal.example.test/download/acdl_{link.prefix}.")
    assert url.endswith("/")
    assert (link.platform, link.distro, link.driver, link.group) == (
        "linux",
        "debian",
        "dkms",
        group,
    )
    assert link.server_url == "https://portal.example.test"
    assert link.enrollment_token.max_uses == 3
    assert 4.9 < (link.expires_at - link.created_at).total_seconds() / 3600 <= 5
    assert link.prefix in lines[0] and "revoke_download_link" in lines[0]
    response = Client().get(path_of(url), HTTP_USER_AGENT="curl/8")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="hlragent.deb"'
    package = tmp_path / "hlragent.deb"
    package.write_bytes(b"".join(response.streaming_content))
    contents = subprocess.run(
        ["dpkg-deb", "--contents", str(package)], capture_output=True, text=True, check=True
    ).stdout
    assert "systemd" in contents
    link.refresh_from_db()
    assert link.downloads == 1
    [event] = DownloadEvent.objects.for_customer(customer).filter(link=link)
    assert event.served and event.user_agent == "curl/8"


def test_vmware_link_needs_a_cloud_and_defaults_to_the_public_url(customer, settings):
    settings.PUBLIC_URL = "http://portal.internal:8000"
    cloud = make_cloud(customer, name="vCenter-A")
    url = create("--platform", "vmware", "--cloud", "vcenter-a")[-1]  # any case
    link = only_link(customer)
    assert url.startswith("http://portal.internal:8000/download/acdl_")
    assert (link.cloud, link.network, link.enrollment_token.cloud) == (
        cloud,
        {"mode": "dhcp"},
        cloud,
    )
    response = Client().get(path_of(url))
    assert response.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as archive:
        member = "hvragent-vmware-appliance/files/etc/hvragent/agent.json"
        config = json.load(archive.extractfile(member))
    assert config["server"] == "http://portal.internal:8000"
    assert (config["cloud_id"], config["platform"], config["role"]) == (
        cloud.pk,
        "vmware",
        "appliance",
    )
    assert config["enrollment_token"].startswith(f"acet_{link.enrollment_token.prefix}.")


def test_ovirt_and_windows_links(customer):
    make_cloud(customer, name="engine", platform="ovirt")
    create("--platform", "ovirt", "--cloud", "engine")
    create("--platform", "windows")
    links = DownloadLink.objects.for_customer(customer)
    assert sorted(links.values_list("enrollment_token__platform", flat=True)) == [
        "ovirt",
        "windows",
    ]
    assert links.get(enrollment_token__platform="windows").cloud is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--platform", "os2"], "Unknown platform 'os2'"),
        (["--platform", "linux"], "needs --distro {debian,rhel} and --driver {prebuilt,dkms}"),
        (["--platform", "linux", "--distro", "debian"], "needs --driver {prebuilt,dkms}"),
        (["--platform", "linux", "--distro", "arch", "--driver", "dkms"], "--distro: Choose"),
        (["--platform", "windows", "--distro", "debian"], "--distro: Distribution and driver"),
        (["--platform", "windows", "--group", "Nope"], "no machine group 'Nope'"),
        (["--platform", "vmware"], "--cloud: A VMware vSphere agent needs a registered cloud"),
        (["--platform", "vmware", "--cloud", "nowhere"], "has no cloud 'nowhere'"),
        (["--platform", "ovirt", "--cloud", "mine"], "--cloud: Cloud mine is a VMware vSphere"),
        (["--platform", "windows", "--cloud", "mine"], "--cloud: Only VMware vSphere and oVirt"),
        (["--platform", "windows", "--expires-hours", "x"], "--expires-hours must be a whole"),
        (["--platform", "windows", "--expires-hours", "0"], "--expires-hours: A whole number"),
        (["--platform", "windows", "--agents", "0"], "--agents: A whole number from 1"),
        (["--platform", "windows", "--server-url", "ftp://x"], "--server-url: The portal URL"),
    ],
)
def test_bad_arguments_create_nothing(customer, args, message):
    make_cloud(customer, name="mine")
    with pytest.raises(CommandError, match=message.replace("{", r"\{").replace("}", r"\}")):
        create(*args)
    assert not DownloadLink.objects.all_customers().exists()
    assert not EnrollmentToken.objects.all_customers().exists()


def test_unknown_and_inactive_customers_are_refused(customer, other_customer):
    with pytest.raises(CommandError, match="No customer with the slug 'nobody'"):
        run("create_download_link", "--customer", "nobody", "--platform", "windows")
    other_customer.is_active = False
    other_customer.save()
    with pytest.raises(CommandError, match="inactive"):
        run("create_download_link", "--customer", "globex", "--platform", "windows")


def test_another_customers_group_and_cloud_are_unknown(customer, other_customer):
    MachineGroupFactory(customer=other_customer, name="Theirs")
    make_cloud(other_customer, name="their-vcenter")
    with pytest.raises(CommandError, match="no machine group 'Theirs'"):
        create("--platform", "windows", "--group", "Theirs")
    with pytest.raises(CommandError, match="has no cloud 'their-vcenter'"):
        create("--platform", "vmware", "--cloud", "their-vcenter")


@pytest.mark.parametrize("form", ["prefix", "text", "url"])
def test_revoke_by_prefix_text_or_url(customer, form):
    url = create("--platform", "windows")[-1]
    link = only_link(customer)
    text = path_of(url).split("/")[2]
    argument = {"prefix": link.prefix, "text": text, "url": url}[form]
    [line] = run("revoke_download_link", argument)
    assert f"Revoked download link {link.prefix} of acme" in line
    link.refresh_from_db()
    assert link.revoked_at is not None and link.enrollment_token.revoked_at is not None
    assert Client().get(path_of(url)).status_code == 410
    [again] = run("revoke_download_link", link.prefix)
    assert "already revoked" in again


def test_revoke_an_unknown_link_is_an_error(db):
    with pytest.raises(CommandError, match="No download link with the prefix 'abc123'"):
        run("revoke_download_link", "abc123")
    with pytest.raises(CommandError, match="neither"):
        run("revoke_download_link", "https://portal/elsewhere/")
