"""VMware replication end to end, as a customer meets it, with real processes: `manage.py
serve` (web, worker, beat), the vSphere simulator as the customer's vCenter, the *Register new
platform* wizard posted over HTTP (certificate trusted, power off at start and on at finish),
the appliance archive from its download link started with its own start script, the VM
discovered, *Start Protection*, beat dispatching the first replication, the guest writing,
*Replicate now* reading only the changed areas, both points restored bit-exact with
`python -m agent restore`, the power actions seen in the simulator's events, and another
customer's appliance seeing none of it."""

import os
import re
from urllib.parse import urlsplit

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from clouds.connectors import ConnectorError, tls
from tests.acura_portal.appliance_support import (
    finished,
    other_customers_appliance_sees_nothing,
    serving,
    snapshots_restore_bit_exact,
    start_appliance,
)
from tests.e2e_support import (
    Browserless,
    isolated_env,
    wait_until,
)
from tests.vsphere_support import disk_read, guest_write, running_vcsim

pytestmark = [pytest.mark.e2e, pytest.mark.vsphere]

MIB = 1 << 20
DISK_MIB = 32
CS = 256 * 1024  # the portal's default chunk size
VM = "DC0_H0_VM1"


def register_cloud(browser: Browserless, host: str, port: int, fingerprint: str) -> str:
    """The four steps of the wizard for a new vCenter; returns step 4's download link."""
    status, _, step2 = browser.post_form("/c/demo/register/", {"platform": "vmware"})
    assert status == 200 and step2.endswith("/step-2/"), step2
    status, _, step3 = browser.post_form(urlsplit(step2).path, {})
    assert status == 200 and step3.endswith("/step-3/"), step3
    fields = {
        "new_group": "vSphere VMs", "cloud_mode": "new", "cloud-name": "vcenter",
        "cloud-endpoint": f"{host}:{port}", "cloud-login": "acura", "cloud-password": "pw",
        "cloud-trust_fingerprint": fingerprint,
        "cloud-on_replication_start": "power_off", "cloud-on_replication_finish": "power_on",
        "cloud-disk_storage_threshold_percent": "10", "cloud-free_space_threshold_percent": "5",
        "net-mode": "dhcp",
    }  # fmt: skip
    status, page, step4 = browser.post_form(urlsplit(step3).path, fields)
    assert status == 200 and step4.endswith("/step-4/"), page[-3000:]
    match = re.search(r'data-testid="link-url">(https?://[^<"]+)<', page)
    assert match, "step 4 shows no download link"
    return match.group(1)


def power_events(si, vm) -> list[str]:
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
        eventTypeId=["VmPoweredOffEvent", "VmPoweredOnEvent"],
    )
    events = sorted(si.content.eventManager.QueryEvents(spec), key=lambda e: e.key)
    return [type(e).__name__.rsplit(".", 1)[-1] for e in events]


class VCenter:
    """The simulated vCenter seen by pyVmomi: the appliance's own VM, the VM to protect and
    its disk, the guest's writes and reads."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        try:
            tls.probe(host, port, timeout=5)
            raise AssertionError("vcsim's self-signed certificate was trusted")
        except ConnectorError as refused:
            self.fingerprint = refused.fingerprint
        self.si = SmartConnect(
            host=host, port=port, user="acura", pwd="pw", disableSslCertValidation=True
        )
        self.own = self.si.content.searchIndex.FindByInventoryPath("DC0/vm/DC0_H0_VM0")
        self.vm = self.si.content.searchIndex.FindByInventoryPath(f"DC0/vm/{VM}")
        devices = self.vm.config.hardware.device
        (self.disk,) = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]

    def write(self, offset: int, data: bytes) -> None:
        guest_write(self.host, self.port, self.vm._moId, self.disk.key, offset, data)

    def guest_disk(self) -> bytes:
        return b"".join(
            disk_read(self.host, self.port, self.vm._moId, self.disk.key, o, 4 * MIB)
            for o in range(0, DISK_MIB * MIB, 4 * MIB)
        )


def test_wizard_appliance_protect_beat_cbt_incremental_restore_and_isolation(tmp_path):
    with (
        running_vcsim(vms=2, disk_mib=DISK_MIB, user="acura", password="pw") as (host, port),
        isolated_env(tmp_path) as env,
    ):
        vcenter = VCenter(host, port)
        env.update(ACURA_DISPATCH_SECONDS="2", ACURA_AGENT_HEARTBEAT_SECONDS="1",
                   ACURA_STORE_FSYNC="0")  # fmt: skip
        watch = []
        try:
            with serving(env, watch) as (portal, password):
                customer_steps(portal, password, tmp_path, watch, vcenter)
        finally:
            Disconnect(vcenter.si)


def customer_steps(portal, password, tmp_path, watch, vcenter: VCenter) -> None:
    """From the wizard to the other customer's appliance."""
    si, vm, own, write, guest_disk = (
        vcenter.si,
        vcenter.vm,
        vcenter.own,
        vcenter.write,
        vcenter.guest_disk,
    )
    host, port, fingerprint = vcenter.host, vcenter.port, vcenter.fingerprint
    base = portal.url
    browser = Browserless(base)
    assert browser.login("admin", password)[0] == 200

    # The wizard registers the vCenter (checked live) and gives the appliance's link.
    url = register_cloud(browser, host, port, fingerprint)
    daemon, config_path, _ = start_appliance(
        url, tmp_path, vm_uuid=own.config.uuid, state_dir=str(tmp_path / "state"),
        heartbeat_seconds=1, poll_seconds=1,
    )  # fmt: skip
    watch.append(daemon)
    machine_id = wait_until(
        lambda: portal.query(
            "list(Machine.objects.for_customer(customer('demo')).filter(platform="
            f"'vmware', name='{VM}').values_list('id', flat=True))"
        ),
        90,
        "the discovered VM",
    )[0]

    # The guest has data; the customer starts protection; beat dispatches the job.
    first_writes = [(1 * MIB + 7, os.urandom(700_000)), (20 * MIB, b"log line\n" * 30_000)]
    for offset, data in first_writes:
        write(offset, data)
    point1 = guest_disk()
    events_before = len(power_events(si, vm))
    status, _, _ = browser.post_form(
        "/c/demo/machines/bulk/",
        {"machines": str(machine_id), "action": "start_protection"},
    )
    assert status == 200
    first = wait_until(lambda: finished(portal, "schedule"), 120, "the scheduled job")
    assert first[0][2] == "succeeded", first
    allocated = {p for o, d in first_writes for p in range(o // CS, (o + len(d) - 1) // CS + 1)}
    assert first[0][3] <= len(allocated) * CS  # CBT "*": only the allocated areas
    power = power_events(si, vm)[events_before:]
    assert power == ["VmPoweredOffEvent", "VmPoweredOnEvent"]  # off at start, on at finish
    assert str(vm.runtime.powerState) == "poweredOn"
    assert vm.snapshot is None  # the job's snapshot is gone

    # The guest writes; *Replicate now* reads only the changed areas.
    changes = [(5 * MIB + 3, os.urandom(10_000)), (30 * MIB, os.urandom(300_000))]
    for offset, data in changes:
        write(offset, data)
    point2 = guest_disk()
    status, _, _ = browser.post_form(f"/c/demo/machines/{machine_id}/replicate/", {})
    assert status == 200
    second = wait_until(lambda: finished(portal, "manual"), 120, "the manual job")
    assert second[0][2] == "succeeded", second
    touched = {p for o, d in changes for p in range(o // CS, (o + len(d) - 1) // CS + 1)}
    assert sum(len(d) for _, d in changes) <= second[0][3] <= len(touched) * CS
    status, page, _ = browser.get(f"/c/demo/machines/{machine_id}/")
    assert status == 200 and "In sync" in page
    assert page.count('data-testid="job-consistency">Application-consistent') == 2

    def job_log() -> str | None:  # the daemon ships its log lines every few seconds
        _, body, _ = browser.get(f"/c/demo/machines/{machine_id}/")
        return body if f"snapshot acura-job-{second[0][0]} of VM" in body else None

    log_page = wait_until(job_log, 30, "the last job's VMware steps on the machine page")
    for step in (
        "storage thresholds: datastore LocalDS_0",
        "on replication start: Power off",
        f"snapshot acura-job-{second[0][0]} of VM {VM} taken, quiesced",
        "changed area(s)",
        f"snapshot acura-job-{second[0][0]} of VM {VM} removed",
        "on replication finish: Power on",
    ):
        assert step in log_page, step

    # Both points restore bit-exact through the appliance's own config.
    snaps = snapshots_restore_bit_exact(config_path, tmp_path, [point1, point2])
    assert [s["consistency"] for s in snaps] == ["application", "application"]
    assert snaps[0]["change_id"] and snaps[1]["change_id"] != snaps[0]["change_id"]

    # Another customer's appliance sees none of it.
    other_customers_appliance_sees_nothing(portal, tmp_path, "vmware", first[0][0], snaps[0]["id"])
