"""Every customer page and API route, visited by a member of another customer, is a 404.

The routes are discovered from the URLconf, so a new page or endpoint is covered the day it
is added — and this test fails if it takes a kind of object id the map below doesn't know.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from clouds.models import (
    Agent,
    AgentCredential,
    AgentEvent,
    AgentStatus,
    Cloud,
    DownloadLink,
    EnrollmentToken,
    WizardDraft,
)
from clouds.services.clouds import cloud_create
from clouds.services.downloads import download_link_create
from clouds.services.wizard import draft_accept_requirements, draft_start
from protection.models import JobTrigger, Machine, MachineGroup, MachineStatus, ReplicationJob
from protection.services.jobs import job_finish, job_queue, job_take_next
from storage.models import Snapshot
from tenants.models import Membership, Role
from tests.factories import DiskFactory, MachineFactory, MachineGroupFactory, MembershipFactory
from tests.job_support import commit_snapshot, make_agent

# URL name (without namespace) prefix → which of the victim's objects a `pk` refers to.
# Longest prefixes first.
PK_OBJECTS = [
    ("agent", "agent"),
    ("cloud", "cloud"),
    ("download-link", "link"),
    ("link", "link"),
    ("wizard", "draft"),
    ("job", "job"),
    ("machine-group", "group"),
    ("machine", "machine"),
    ("group", "group"),
    ("membership", "membership"),
    ("snapshot", "snapshot"),
]


def _walk(resolver, namespace=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}{entry.namespace}:"
            yield from _walk(entry, ns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield namespace + entry.name, entry


def _params(pattern: URLPattern) -> set[str]:
    regex = pattern.pattern.regex.pattern
    return set(re.findall(r"\(\?P<(\w+)>", regex))


def customer_routes():
    routes = {}
    for name, pattern in _walk(get_resolver()):
        params = _params(pattern)
        if "customer_slug" in params and "format" not in params:
            routes[name] = params
    return routes


def _object_kind(name: str) -> str:
    short = name.split(":")[-1]
    for prefix, kind in PK_OBJECTS:
        if short.startswith(prefix):
            return kind
    raise AssertionError(f"cross-tenant test: no object kind known for route {name!r}")


@pytest.fixture
def victim(customer, other_customer):
    group = MachineGroupFactory(customer=customer, name="Victim group")
    agent = make_agent(customer, status=AgentStatus.ONLINE, group=group)
    machine = MachineFactory(
        customer=customer, group=group, status=MachineStatus.PROTECTED, agent=agent
    )
    DiskFactory(machine=machine)
    membership = MembershipFactory(customer=customer, role=Role.ADMIN)
    disk = DiskFactory(machine=machine, customer=customer, key="victim-disk")
    # A finished job with a real snapshot, then an active one (what Cancel would end).
    job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    done = job_take_next(customer, agent)
    snapshot = commit_snapshot(customer, done, disk, data=b"victim data" * 10000)
    job_finish(done, succeeded=True, snapshot_ids=[snapshot.pk])
    job = job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    AgentEvent.objects.create(
        customer=customer,
        agent=agent,
        level="error",
        message="victim log",
        occurred_at=done.created_at,
    )
    cloud = cloud_create(
        customer,
        platform="vmware",
        name="Victim vCenter",
        endpoint="vcenter.victim.example",
        login="backup",
        password="victim-secret",
        check=False,
    )
    link = download_link_create(
        customer, platform="vmware", server_url="http://testserver", group=group, cloud=cloud
    ).link
    draft = draft_start(customer, membership.user, platform="linux", group=group)
    draft_accept_requirements(draft)
    return {
        "cloud": cloud,
        "link": link,
        "draft": draft,
        "group": group,
        "machine": machine,
        "membership": membership,
        "snapshot": snapshot,
        "agent": agent,
        "job": job,
    }


def _url(name, params, slug, objects):
    kwargs = {"customer_slug": slug}
    if "pk" in params:
        kwargs["pk"] = objects[_object_kind(name)].pk
    if "step" in params:
        kwargs["step"] = 3
    unknown = params - {"customer_slug", "pk", "step"}
    assert not unknown, f"cross-tenant test: teach it the URL parameters {unknown} of {name}"
    return reverse(name, kwargs=kwargs)


def _post_body(objects):
    # Bodies that name the victim's objects wherever a form or endpoint could take them.
    return {
        "machines": [objects["machine"].pk],
        "group": objects["group"].pk,
        "cloud": objects["cloud"].pk,
        "cloud_mode": "registered",
        "platform": "vmware",
        "distro": "debian",
        "driver": "dkms",
        "move_to": objects["group"].pk,
        "action": "start_protection",
        "name": "stolen",
        "role": "viewer",
        "enabled": "1",
        "protected": "1",
    }


def _victim_rows(customer):
    return (
        list(Machine.objects.for_customer(customer).values()),
        list(MachineGroup.objects.for_customer(customer).values()),
        list(Membership.objects.filter(customer=customer).values()),
        list(Snapshot.objects.for_customer(customer).values()),
        list(ReplicationJob.objects.for_customer(customer).values()),
        list(Agent.objects.for_customer(customer).values()),
        list(AgentCredential.objects.for_customer(customer).values()),
        list(Cloud.objects.for_customer(customer).values()),
        list(DownloadLink.objects.for_customer(customer).values()),
        list(EnrollmentToken.objects.for_customer(customer).values()),
        list(WizardDraft.objects.for_customer(customer).values()),
    )


def test_the_route_list_is_not_empty():
    names = set(customer_routes())
    assert {"acura_portal:dashboard", "protection:machine_list", "tenants:membership_list"} <= names
    assert any(not name.count(":") for name in names), "API routes should be discovered too"


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_foreign_customer_slug_is_404_everywhere(stranger_client, victim, customer, method):
    before = _victim_rows(customer)
    for name, params in customer_routes().items():
        url = _url(name, params, customer.slug, victim)
        data = _post_body(victim) if method == "post" else None
        if method in ("put", "patch"):
            response = getattr(stranger_client, method)(
                url, data={"name": "stolen"}, content_type="application/json"
            )
        else:
            response = getattr(stranger_client, method)(url, data=data)
        assert response.status_code == 404, f"{method.upper()} {url} gave {response.status_code}"
    assert _victim_rows(customer) == before


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_foreign_object_ids_under_own_slug_are_404(
    stranger_client, victim, customer, other_customer, method
):
    before = _victim_rows(customer)
    for name, params in customer_routes().items():
        if "pk" not in params:
            continue
        url = _url(name, params, other_customer.slug, victim)
        if method in ("put", "patch"):
            response = getattr(stranger_client, method)(
                url, data={"name": "stolen"}, content_type="application/json"
            )
        else:
            data = _post_body(victim) if method == "post" else None
            response = getattr(stranger_client, method)(url, data=data)
        assert response.status_code == 404, f"{method.upper()} {url} gave {response.status_code}"
    assert _victim_rows(customer) == before


def test_foreign_ids_in_bodies_change_nothing(stranger_client, victim, other_customer, customer):
    """Collection routes of the stranger's own customer, fed the victim's ids, alter nothing."""
    before = _victim_rows(customer)
    for name, params in customer_routes().items():
        if "pk" in params:
            continue
        url = _url(name, params, other_customer.slug, victim)
        stranger_client.post(url, data=_post_body(victim))
        stranger_client.post(url, data=_post_body(victim), content_type="application/json")
    assert _victim_rows(customer) == before


def test_anonymous_is_sent_to_login_or_refused(client, victim, customer):
    for name, params in customer_routes().items():
        url = _url(name, params, customer.slug, victim)
        response = client.get(url)
        assert response.status_code in (302, 401, 403), f"GET {url} gave {response.status_code}"
        if response.status_code == 302:
            assert response["Location"].startswith("/accounts/login/")
