"""Page latency and query counts for a customer with many machines.

Usage: .venv/bin/python bench/pages.py [--machines 10000] [--groups 50] [--clouds 200]
       [--links 500] [--repeat 15]
Prints one line per page: median and p90 milliseconds, SQL queries per request.
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--clouds", type=int, default=200)
    parser.add_argument("--links", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        run(args, Client, CaptureQueriesContext, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def populate(args):
    from django.contrib.auth import get_user_model

    from protection.models import Disk, Machine, MachineGroup, MachineStatus, Platform
    from protection.services.policy import policy_update
    from tenants.models import Customer, Membership

    customer = Customer.objects.create(name="Bench", slug="bench", time_zone="Europe/Berlin")
    other = Customer.objects.create(name="Other", slug="other")
    user = get_user_model().objects.create_user("bench", password="x")
    Membership.objects.create(user=user, customer=customer, role="admin")
    groups = MachineGroup.objects.bulk_create(
        MachineGroup(customer=customer, name=f"group-{i:03d}") for i in range(args.groups)
    )
    statuses = list(MachineStatus)
    platforms = list(Platform)
    for owner in (customer, other):
        machines = Machine.objects.bulk_create(
            Machine(
                customer=owner,
                name=f"vm-{i:06d}",
                platform=platforms[i % len(platforms)],
                group=groups[i % len(groups)] if owner == customer else None,
                external_id=f"ext-{i}",
                os_name="Ubuntu 24.04" if i % 3 else "Windows Server 2022",
                ip_addresses=[f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"],
                cpus=4,
                ram_mb=8192,
                status=statuses[i % len(statuses)],
            )
            for i in range(args.machines)
        )
        Disk.objects.bulk_create(
            Disk(customer=owner, machine=m, key="2000", size_bytes=100 * 2**30) for m in machines
        )
    policy_update(customer, customer, {"keep_daily": 30})
    for group in groups[::5]:
        policy_update(customer, group, {"interval_minutes": 30})
    return customer, user, groups


def populate_clouds(args, customer, user):
    """Registered clouds, download links (some downloaded) and a wizard run at step 3."""
    from clouds.services.clouds import cloud_create
    from clouds.services.downloads import download_link_create
    from clouds.services.wizard import draft_accept_requirements, draft_start

    clouds = [
        cloud_create(
            customer,
            platform="vmware" if i % 2 else "ovirt",
            name=f"cloud-{i:04d}",
            endpoint=f"https://engine-{i}.example/ovirt-engine/api",
            login="backup",
            password="x",
            check=False,
        )
        for i in range(args.clouds)
    ]
    for i in range(args.links):
        cloud = clouds[i % len(clouds)] if i % 3 == 0 and clouds else None
        options = (
            {"platform": cloud.platform, "cloud": cloud}
            if cloud
            else {"platform": "linux", "distro": "debian", "driver": "dkms"}
        )
        download_link_create(customer, server_url="http://bench", created_by=user, **options)
    draft = draft_start(customer, user, platform="vmware")
    draft_accept_requirements(draft)
    return draft


def run(args, client_class, capture, connection):
    from protection.models import Machine

    started = time.perf_counter()
    customer, user, groups = populate(args)
    elapsed = time.perf_counter() - started
    print(f"populated {args.machines} machines x 2 customers in {elapsed:.1f}s")
    started = time.perf_counter()
    draft = populate_clouds(args, customer, user)
    print(
        f"{args.clouds} clouds, {args.links} download links in {time.perf_counter() - started:.1f}s"
    )
    client = client_class()
    client.force_login(user)
    machine = Machine.objects.for_customer(customer).order_by("pk")[args.machines // 2]
    last_page = (args.machines + 49) // 50
    slug = customer.slug
    pages = {
        "dashboard": f"/c/{slug}/",
        "machine list": f"/c/{slug}/machines/",
        "list, status filter": f"/c/{slug}/machines/?status=error",
        "list, search by IP": f"/c/{slug}/machines/?q=10.0.12.",
        "list, last page": f"/c/{slug}/machines/?page={last_page}",
        "list, sort last replicated": f"/c/{slug}/machines/?sort=-last_replicated",
        "group detail": f"/c/{slug}/groups/{groups[0].pk}/",
        "group list": f"/c/{slug}/groups/",
        "machine detail": f"/c/{slug}/machines/{machine.pk}/",
        "machine settings": f"/c/{slug}/machines/{machine.pk}/settings/",
        "API machine list": f"/api/v1/c/{slug}/machines/",
        "wizard start": f"/c/{slug}/register/",
        "wizard step 3 (VMware)": f"/c/{slug}/register/{draft.pk}/step-3/",
        "manage clouds": f"/c/{slug}/clouds/",
        "download links": f"/c/{slug}/download-links/",
        "API clouds": f"/api/v1/c/{slug}/clouds/",
        "API download links": f"/api/v1/c/{slug}/download-links/",
    }
    print(f"{'page':28} {'median ms':>10} {'p90 ms':>8} {'queries':>8}")
    for label, url in pages.items():
        timings = []
        for _ in range(args.repeat):
            with capture(connection) as queries:
                t0 = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        timings.sort()
        p90 = timings[int(len(timings) * 0.9) - 1]
        print(f"{label:28} {statistics.median(timings):10.1f} {p90:8.1f} {len(queries):8d}")

    # The tenant-scope check walks the WHERE tree of every query: measure it alone.
    queryset = Machine.objects.for_customer(customer).filter(status="error", group=groups[0])
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        queryset._assert_scoped()
    per_check_us = (time.perf_counter() - t0) / n * 1e6
    print(f"tenant-scope check: {per_check_us:.2f} µs per query")


if __name__ == "__main__":
    main()
