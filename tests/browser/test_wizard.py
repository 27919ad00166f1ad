"""The Register new platform wizard in a real browser, for every platform: the menu entry and
the group page's button, the four steps with Back, the fieldsets that follow the radio
choices, the VMware credential check against the real vSphere simulator (untrusted
certificate, wrong password, then right), the oVirt check against the in-test engine, and the
agent download itself (the file is checked with the packaging tools)."""

import io
import subprocess
import tarfile
import zipfile

import pytest
from playwright.sync_api import expect

from clouds.models import Cloud, DownloadLink
from protection.models import MachineGroup
from tests.ovirt_support import running_engine
from tests.vsphere_support import running_vcsim

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def next_step(page, number):
    page.get_by_test_id("wizard-next").click()
    expect(page.locator(".steps li.current")).to_have_attribute("data-step", str(number))


def download(page, tmp_path):
    with page.expect_download() as info:
        page.get_by_test_id("download-agent").click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target


def test_linux_run_with_back_kernels_and_the_deb(page, login, operator_user, customer, tmp_path):
    login(operator_user)
    page.goto(f"/c/{customer.slug}/")
    page.get_by_test_id("nav-register").click()
    page.get_by_test_id("platform-linux").click()
    next_step(page, 2)
    expect(page.get_by_test_id("requirements")).to_contain_text("sudo permissions")
    next_step(page, 3)
    page.fill("#id_new_group", "Linux hosts")
    page.get_by_label("Debian/Ubuntu").check()
    page.get_by_label("DKMS").check()
    page.get_by_text("Show supported kernels").click()
    expect(page.get_by_test_id("supported-kernels")).to_contain_text("6.1.0-18-amd64")
    next_step(page, 4)
    expect(page.get_by_test_id("curl-command")).to_contain_text("curl -k -o hlragent.deb '")
    expect(page.get_by_test_id("protection-instructions")).to_contain_text("linux-headers-amd64")
    # Back keeps every choice; Next again keeps the same link.
    link = page.get_by_test_id("link-url").inner_text()
    page.get_by_test_id("wizard-back").click()
    expect(page.get_by_label("DKMS")).to_be_checked()
    expect(page.locator("#id_group option:checked")).to_have_text("Linux hosts")
    next_step(page, 4)
    expect(page.get_by_test_id("link-url")).to_have_text(link)
    deb = download(page, tmp_path)
    assert deb.name == "hlragent.deb"
    info = subprocess.run(["dpkg-deb", "--info", deb], capture_output=True, text=True, check=True)
    assert "Package: hlragent" in info.stdout and "dkms" in info.stdout
    assert DownloadLink.objects.for_customer(customer).get().downloads == 1
    page.get_by_test_id("wizard-finish").click()
    group = MachineGroup.objects.for_customer(customer).get(name="Linux hosts")
    expect(page).to_have_url(f"{page.url.split('/c/')[0]}/c/{customer.slug}/groups/{group.pk}/")
    expect(page.locator(".messages")).to_contain_text("Actions → Start Protection")


def test_windows_run_from_the_group_page(page, login, operator_user, customer, group, tmp_path):
    login(operator_user)
    page.goto(f"/c/{customer.slug}/groups/{group.pk}/")
    page.get_by_test_id("group-register-platform").click()
    expect(page.get_by_test_id("preselected-group")).to_contain_text(group.name)
    page.get_by_test_id("platform-windows").click()
    next_step(page, 2)
    expect(page.get_by_test_id("req-software")).to_contain_text(".NET Framework 4.0")
    next_step(page, 3)
    expect(page.locator("#id_group option:checked")).to_have_text(group.name)
    next_step(page, 4)
    archive = download(page, tmp_path)
    assert archive.name == "hwragent.zip"
    names = zipfile.ZipFile(archive).namelist()
    assert "hwragent.msi" in names


def fill_vmware(page, host, port, password):
    page.fill("#id_new_group", "vSphere VMs")
    page.get_by_label("New VMware vSphere").check()
    page.fill("#id_cloud-name", "vcenter")
    page.fill("#id_cloud-endpoint", f"{host}:{port}")
    page.fill("#id_cloud-login", "acura")
    page.fill("#id_cloud-password", password)


def test_vmware_run_checks_the_credentials_against_the_simulator(
    page, login, operator_user, customer, tmp_path
):
    login(operator_user)
    page.goto(f"/c/{customer.slug}/register/")
    page.get_by_test_id("platform-vmware").click()
    next_step(page, 2)
    next_step(page, 3)
    # The static fields show only for Static.
    expect(page.get_by_test_id("static-network")).to_be_hidden()
    page.get_by_label("Static").check()
    expect(page.get_by_test_id("static-network")).to_be_visible()
    with running_vcsim(user="acura", password="s3cret") as (host, port):
        fill_vmware(page, host, port, "s3cret")
        page.fill("#id_net-ip", "172.22.6.230")
        page.fill("#id_net-netmask", "255.255.0.0")
        page.fill("#id_net-gateway", "172.22.1.2")
        page.fill("#id_net-dns", "1.1.1.1, 2.2.2.2")
        page.get_by_test_id("wizard-next").click()
        expect(page.get_by_test_id("trust-certificate")).to_be_visible()
        page.get_by_test_id("trust-checkbox").check()
        page.fill("#id_cloud-password", "wrong")
        page.get_by_test_id("wizard-next").click()
        expect(page.get_by_test_id("new-cloud")).to_contain_text("wrong login or password")
        assert not Cloud.objects.for_customer(customer).exists()
        page.fill("#id_cloud-password", "s3cret")
        next_step(page, 4)
    expect(page.get_by_test_id("instruction-steps")).to_contain_text("on each ESXi host")
    appliance = download(page, tmp_path)
    with tarfile.open(appliance) as archive:
        configs = [m for m in archive.getnames() if m.endswith(".json")]
        assert configs
    cloud = Cloud.objects.for_customer(customer).get()
    assert cloud.check_ok and cloud.tls_fingerprint


def test_ovirt_run_checks_the_engine(page, login, operator_user, customer, tmp_path):
    login(operator_user)
    page.goto(f"/c/{customer.slug}/register/")
    page.get_by_test_id("platform-ovirt").click()
    next_step(page, 2)
    expect(page.get_by_test_id("req-hardware")).to_contain_text("at least 10 GB")
    next_step(page, 3)
    with running_engine(password="secret") as engine:
        page.fill("#id_new_group", "oVirt VMs")
        page.get_by_label("New oVirt/zVirt").check()
        page.fill("#id_cloud-name", "zvirt_source")
        page.fill("#id_cloud-endpoint", engine.url)
        page.fill("#id_cloud-login", "admin@internal")
        page.fill("#id_cloud-password", "secret")
        page.select_option("#id_cloud-discovery_level", "host")
        next_step(page, 4)
    expect(page.get_by_test_id("instruction-steps")).to_contain_text("one agent per host")
    appliance = download(page, tmp_path)
    assert tarfile.is_tarfile(io.BytesIO(appliance.read_bytes()))


def test_two_tabs_keep_their_own_runs(page, login, operator_user, customer):
    login(operator_user)
    other = page.context.new_page()
    page.goto(f"/c/{customer.slug}/register/")
    page.get_by_test_id("platform-linux").click()
    next_step(page, 2)
    other.goto(f"/c/{customer.slug}/register/")
    other.get_by_test_id("platform-windows").click()
    other.get_by_test_id("wizard-next").click()
    expect(other.get_by_test_id("requirements")).to_contain_text(".NET Framework")
    page.reload()
    expect(page.get_by_test_id("requirements")).to_contain_text("sudo permissions")
    page.goto(f"/c/{customer.slug}/register/")
    expect(page.get_by_test_id("open-draft")).to_have_count(2)
