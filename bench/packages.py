"""Agent package builds and downloads: how long a customer waits after *Download agent*.

Usage: .venv/bin/python bench/packages.py [--repeat 7]
Prints, per package kind: the build's median and max (pure builder, no Django), then the
download through the portal (Django test client against a test database): the first request
of a link (build + cache) and the following ones (served from the cache), plus the package
size. Packages are built on demand per link and cached until the link ends.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ACURA_DATA_DIR", tempfile.mkdtemp(prefix="acura-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

KINDS = [
    ("deb (prebuilt)", {"platform": "linux", "distro": "debian", "driver": "prebuilt"}),
    ("rpm (dkms)", {"platform": "linux", "distro": "rhel", "driver": "dkms"}),
    ("windows zip+msi", {"platform": "windows"}),
    ("vmware appliance", {"platform": "vmware"}),
    ("ovirt appliance", {"platform": "ovirt"}),
]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def bench_builds(repeat: int) -> None:
    from clouds.packages import PackageSpec, build_package

    print(f"{'package':18} {'build median':>14} {'build max':>12} {'size':>10}")
    for label, options in KINDS:
        spec = PackageSpec(**options)
        config = {
            "server": "https://portal.example:8443",
            "server_fingerprint": None,
            "enrollment_token": "acet_0123456789ab.secret",
            "customer": {"id": 1, "slug": "acme"},
            "cloud_id": 1 if spec.platform in ("vmware", "ovirt") else None,
            "platform": spec.platform,
            "role": "appliance" if spec.platform in ("vmware", "ovirt") else "host",
        }
        times, size = [], 0
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                path = build_package(spec, config, Path(folder))
                times.append(time.perf_counter() - started)
                size = path.stat().st_size
        median, worst = ms(statistics.median(times)), ms(max(times))
        print(f"{label:18} {median:>14} {worst:>12} {size / 1024:8.1f} KiB")


def bench_downloads(repeat: int) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        from clouds.services.clouds import cloud_create
        from clouds.services.downloads import download_link_create
        from tenants.models import Customer

        customer = Customer.objects.create(name="Bench", slug="bench")
        clouds = {
            platform: cloud_create(
                customer,
                platform=platform,
                name=f"{platform}-cloud",
                endpoint="https://engine.example/ovirt-engine/api",
                login="admin@internal",
                password="x",
                check=False,
            )
            for platform in ("vmware", "ovirt")
        }
        client = Client()
        print(f"\n{'download':18} {'first (build)':>14} {'cached median':>14}")
        for label, options in KINDS:
            cloud = clouds.get(options["platform"])
            link = download_link_create(
                customer, server_url="http://testserver", cloud=cloud, **options
            )
            timings = []
            for _ in range(repeat + 1):
                started = time.perf_counter()
                response = client.get(link.path)
                b"".join(response.streaming_content)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
            first, rest = timings[0], timings[1:]
            print(f"{label:18} {ms(first):>14} {ms(statistics.median(rest)):>14}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    bench_builds(args.repeat)
    bench_downloads(args.repeat)


if __name__ == "__main__":
    main()
