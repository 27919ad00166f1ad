"""A VMware appliance from download to machines, with real processes: `manage.py serve`
(web, worker, beat), the vSphere simulator as the customer's vCenter, a cloud registered
with its certificate trusted, `create_download_link --platform vmware`, the appliance
archive fetched with curl and unpacked, and the archive's own start script enrolling the
agent. At its first heartbeat the appliance names its VM (the SMBIOS UUID a real appliance
reads from /sys/class/dmi/id/product_uuid); a worker discovers the vCenter, and the other VMs
of the appliance's ESXi host appear in the group as Unprotected."""

import json
import time

import pytest

from clouds.connectors import ConnectorError, tls, vmware
from tests.acura_portal.appliance_support import serving, start_appliance
from tests.e2e_support import isolated_env, wait_until
from tests.vsphere_support import running_vcsim

pytestmark = [pytest.mark.e2e, pytest.mark.vsphere]


def test_a_vmware_appliance_gets_its_hosts_vms_as_machines(tmp_path):
    with running_vcsim(vms=2) as (host, port), isolated_env(tmp_path) as env:
        try:
            tls.probe(host, port, timeout=5)
            raise AssertionError("vcsim's self-signed certificate was trusted")
        except ConnectorError as refused:
            fingerprint = refused.fingerprint
        tree = vmware.discover(
            f"{host}:{port}", "u", "p", cluster_level=False, tls_fingerprint=fingerprint,
            timeout=10,
        )  # fmt: skip
        own = next(vm for vm in tree.vms() if vm.name == "DC0_H0_VM0")
        env.update(ACURA_AGENT_HEARTBEAT_SECONDS="1", ACURA_STORE_FSYNC="0")
        watch = []
        with serving(env, watch) as (portal, _):
            portal.shell(
                "from tenants.models import Customer\n"
                "from protection.services.machines import group_create\n"
                "from clouds.services.clouds import cloud_create\n"
                "demo = Customer.objects.get(slug='demo')\n"
                "group_create(demo, name='vSphere VMs')\n"
                f"cloud_create(demo, platform='vmware', name='vcenter', endpoint='{host}:{port}',"
                f" login='acura', password='pw', tls_fingerprint='{fingerprint}')"
            )
            url = portal.manage(
                "create_download_link", "--customer", "demo", "--platform", "vmware",
                "--cloud", "vcenter", "--group", "vSphere VMs", "--server-url", portal.url,
            )  # fmt: skip
            daemon, _, packaged = start_appliance(
                url, tmp_path, vm_uuid=own.bios_uuid, state_dir=str(tmp_path / "state"),
                heartbeat_seconds=1, poll_seconds=1,
            )  # fmt: skip
            watch.append(daemon)
            assert (packaged["role"], packaged["platform"]) == ("appliance", "vmware")
            assert "pw" not in json.dumps(packaged["cloud"])  # the password stays in the portal
            started = time.monotonic()
            rows = wait_until(
                lambda: portal.query(
                    "sorted(Machine.objects.for_customer(customer('demo')).filter(platform="
                    "'vmware').values_list('name', 'group__name', 'status'))"
                ),
                90,
                "the appliance's machines",
            )
            seconds = time.monotonic() - started
            print(f"appliance start → its host's VMs in the group: {seconds:.1f} s")
    assert rows == [["DC0_H0_VM1", "vSphere VMs", "unprotected"]]
