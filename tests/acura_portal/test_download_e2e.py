"""From a download link to a machine in the chosen group, with real processes: the portal
under gunicorn, ``create_download_link``, ``curl -k -o hlragent.deb '<link>'``, the .deb
unpacked with ``dpkg-deb -x``, and the package's own start script (what its systemd unit
runs) enrolling with the packaged token and starting the daemon, whose first report puts
the host into the group as Unprotected. The link is then revoked: the next download is
refused, and so is a second enrollment with the same package."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.agent.e2e_support import Process, make_image, start_portal
from tests.e2e_support import wait_until

pytestmark = pytest.mark.e2e


def test_the_downloaded_deb_enrolls_and_its_host_appears_in_the_group(tmp_path):
    with start_portal(tmp_path / "portal") as portal:
        portal.customer("acme")
        portal.shell(
            "from tenants.models import Customer\n"
            "from protection.services.machines import group_create\n"
            "group_create(Customer.objects.get(slug='acme'), name='Linux hosts')"
        )
        url = portal.manage(
            "create_download_link", "--customer", "acme", "--platform", "linux",
            "--group", "Linux hosts", "--distro", "debian", "--driver", "prebuilt",
            "--server-url", portal.url,
        )  # fmt: skip
        assert url.startswith(f"{portal.url}/download/acdl_"), url

        # What the customer runs on the machine to protect.
        deb = tmp_path / "hlragent.deb"
        subprocess.run(["curl", "-k", "-sS", "-f", "-o", str(deb), url], check=True, timeout=120)
        root = tmp_path / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        config_path = root / "etc/hlragent/agent.json"
        assert oct(config_path.stat().st_mode & 0o777) == "0o600"
        config = json.loads(config_path.read_text())
        assert config["server"] == portal.url and config["enrollment_token"].startswith("acet_")
        assert (config["platform"], config["role"], config["group"]) == (
            "linux",
            "host",
            "Linux hosts",
        )
        # The machine's disk and identity (a real host would report /sys/block and its
        # machine-id); the state folder outside /var/lib, which needs root.
        image = make_image(tmp_path / "disk.img", "rtz", seed=5)
        config.update(
            disks=[{"key": "sda", "path": str(image)}],
            machine={"external_id": "deb-host", "name": "deb-host"},
            state_dir=str(tmp_path / "state"),
            heartbeat_seconds=1,
            poll_seconds=1,
        )
        config_path.write_text(json.dumps(config))

        # The package's launcher picks the newest python3.x on the machine; point it at this
        # interpreter (it has zstandard, which the .deb depends on as python3-zstandard).
        env = {
            **os.environ,
            "ACURA_AGENT_PYTHON": sys.executable,
            "ACURA_AGENT_HOME": str(root / "opt/hlragent"),
            "ACURA_AGENT": str(root / "usr/bin/acura-agent"),
        }
        env.pop("PYTHONPATH", None)
        start = root / "opt/hlragent/bin/hlragent-start"
        daemon = Process(["sh", str(start), str(config_path)], env)
        try:
            started = time.monotonic()
            rows = wait_until(
                lambda: portal.query(
                    "list(Machine.objects.for_customer(customer('acme'))"
                    ".filter(external_id='deb-host').values_list('group__name', 'status', "
                    "'agent__platform'))"
                ),
                60,
                "the downloaded agent's machine",
            )
            seconds = time.monotonic() - started
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nagent output:\n{daemon.output[-3000:]}") from None
        finally:
            daemon.stop()
            daemon.kill_group()
        assert rows == [["Linux hosts", "unprotected", "linux"]], daemon.output[-2000:]
        enrolled = json.loads(config_path.read_text())
        assert "enrollment_token" not in enrolled and enrolled["credential"].startswith("acag_")
        print(f"download → machine in group: {seconds:.1f} s after the start script ran")

        counts = portal.query(
            "[(l.downloads, l.events.filter(served=True).count()) for l in "
            "__import__('clouds.models', fromlist=['x']).DownloadLink.objects"
            ".for_customer(customer('acme'))]"
        )
        assert counts == [[1, 1]]

        # Revoked: the URL serves nothing and the package's token enrolls no one else.
        portal.manage("revoke_download_link", url)
        refused = subprocess.run(
            ["curl", "-k", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert refused.stdout == "410"
        again = tmp_path / "again.json"
        again.write_text(json.dumps({**config, "state_dir": str(tmp_path / "state2")}))
        enroll = subprocess.run(
            [str(root / "usr/bin/acura-agent"), "enroll", "--config", str(again)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert enroll.returncode == 3, enroll.stdout + enroll.stderr
        assert "revoked" in (enroll.stdout + enroll.stderr)
