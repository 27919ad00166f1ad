"""oVirt replication end to end with real processes: `manage.py serve` (web, worker, beat), the
in-test engine (a stand-in for the engine API) whose data side is real (qcow2 volumes,
qemu-nbd, the ovirt-imageio daemon), the appliance archive from its download link started with
its own start script, the VM discovered at the cloud's level, *Start Protection*, beat
dispatching the full replication, the guest writing, *Replicate now* reading only the new
layer's extents, exactly one product snapshot left on the VM after each job, both points
restored bit-exact with `python -m agent restore`, the oVirt steps on the machine page, and
another customer's appliance seeing none of it."""

import os

import pytest

from tests.acura_portal.appliance_support import (
    finished,
    other_customers_appliance_sees_nothing,
    serving,
    snapshots_restore_bit_exact,
    start_appliance,
)
from tests.agent.ovirt_appliance import DISK, MIB, ovirt_peer
from tests.e2e_support import Browserless, isolated_env, wait_until

pytestmark = pytest.mark.e2e

CS = 256 * 1024  # the portal's default chunk size


def product_snapshots(engine) -> list[str]:
    return [s["description"] for s in engine.snapshots.get("vm1", [])]


def chunks(spans) -> int:
    return len({p for o, d in spans for p in range(o // CS, (o + len(d) - 1) // CS + 1)})


def test_appliance_protect_beat_incremental_layer_restore_and_isolation(tmp_path):
    watch = []
    with (
        ovirt_peer(tmp_path / "peer") as (engine, storage),
        isolated_env(tmp_path) as env,
    ):
        env.update(ACURA_DISPATCH_SECONDS="2", ACURA_AGENT_HEARTBEAT_SECONDS="1",
                   ACURA_STORE_FSYNC="0")  # fmt: skip
        with serving(env, watch) as (portal, password):
            portal.shell(
                "from tenants.models import Customer\n"
                "from protection.services.machines import group_create\n"
                "from clouds.services.clouds import cloud_create\n"
                "demo = Customer.objects.get(slug='demo')\n"
                "group_create(demo, name='oVirt VMs')\n"
                f"cloud_create(demo, platform='ovirt', name='engine', endpoint='{engine.url}',"
                " login='admin@internal', password='secret',"
                " options={'discovery_level': 'cloud'})"
            )
            url = portal.manage(
                "create_download_link", "--customer", "demo", "--platform", "ovirt",
                "--cloud", "engine", "--group", "oVirt VMs", "--server-url", portal.url,
            )  # fmt: skip
            daemon, config_path, packaged = start_appliance(
                url, tmp_path, vm_uuid="vm-self", state_dir=str(tmp_path / "state"),
                heartbeat_seconds=1, poll_seconds=1,
            )  # fmt: skip
            watch.append(daemon)
            assert (packaged["role"], packaged["platform"]) == ("appliance", "ovirt")
            machine_id = wait_until(
                lambda: portal.query(
                    "list(Machine.objects.for_customer(customer('demo')).filter(platform="
                    "'ovirt', name='web1').values_list('id', flat=True))"
                ),
                90,
                "the discovered VM",
            )[0]

            first = [(1 * MIB + 7, os.urandom(300_000)), (11 * MIB, b"log line\n" * 20_000)]
            for offset, data in first:
                storage.write(DISK, offset, data)
            point1 = storage.content(DISK)
            browser = Browserless(portal.url)
            assert browser.login("admin", password)[0] == 200
            protect = {"machines": str(machine_id), "action": "start_protection"}
            assert browser.post_form("/c/demo/machines/bulk/", protect)[0] == 200
            job1 = wait_until(lambda: finished(portal, "schedule"), 120, "the scheduled job")[0]
            assert job1[2] == "succeeded", job1
            assert job1[3] <= chunks(first) * CS  # only the non-zero extents
            assert product_snapshots(engine) == [f"acura-job-{job1[0]}"]

            changes = [(5 * MIB + 3, os.urandom(10_000)), (14 * MIB, os.urandom(200_000))]
            for offset, data in changes:
                storage.write(DISK, offset, data)
            point2 = storage.content(DISK)
            assert browser.post_form(f"/c/demo/machines/{machine_id}/replicate/", {})[0] == 200
            job2 = wait_until(lambda: finished(portal, "manual"), 120, "the manual job")[0]
            assert job2[2] == "succeeded", job2
            assert sum(len(d) for _, d in changes) <= job2[3] <= chunks(changes) * CS
            assert product_snapshots(engine) == [f"acura-job-{job2[0]}"]  # the previous: gone

            def ovirt_log() -> str | None:  # the daemon ships its log lines every few seconds
                _, body, _ = browser.get(f"/c/demo/machines/{machine_id}/")
                return body if "kept as the base of the next replication" in body else None

            page = wait_until(ovirt_log, 30, "the last job's oVirt steps on the machine page")
            assert "oVirt replication" in page and "new since the previous snapshot" in page

            snaps = snapshots_restore_bit_exact(config_path, tmp_path, [point1, point2])

            other_customers_appliance_sees_nothing(
                portal, tmp_path, "ovirt", job1[0], snaps[0]["id"]
            )
