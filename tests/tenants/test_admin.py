"""The provider admin: every registered model's pages load for a superuser across all
customers, search, filters and actions work, and related rows cannot cross customers."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from clouds.models import AgentEvent, Cloud, DownloadEvent, WizardDraft
from clouds.services.downloads import download_link_create
from protection.models import Disk, Machine, MachineGroup, MachineStatus, ReplicationPolicy
from storage.models import MaintenanceKind, MaintenanceRun, QuarantinedChunk
from tenants.models import Customer, Membership
from tests.factories import DiskFactory, MachineFactory, MachineGroupFactory
from tests.storage_support import Agent

User = get_user_model()


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.com", "x")


@pytest.fixture
def staff(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def world(customer, other_customer, admin_user, stranger_user, machine):
    """At least one row of every registered model, in two customers."""
    theirs = MachineFactory(customer=other_customer, name="db-01", status=MachineStatus.IN_SYNC)
    # Replication protects its machine and starts a job there, so it gets its own machine
    # (``machine`` stays unprotected for the action tests).
    # A fixed external id: the factory's numbered one (uuid-101, …) would match the
    # autocomplete test's "01" once enough machines were made in the same process.
    backup = MachineFactory(
        customer=customer, group=machine.group, name="backup-host", external_id="backup-host-id"
    )
    replicated = DiskFactory(machine=backup, key="scsi0:0", label="Hard disk 1")
    DiskFactory(machine=theirs)
    # An enrolled agent (token, credential, a job) and the store's catalog it fills: a
    # store, chunks, an index, a snapshot and its session.
    agent = Agent.enrolled(customer, hostname="admin test agent")
    agent.replicate(replicated, b"admin test data " * 40000)
    AgentEvent.objects.create(
        customer=customer, agent=agent.agent, message="replicated", occurred_at=timezone.now()
    )
    Cloud.objects.create(customer=other_customer, name="vCenter 1", platform="vmware")
    link = download_link_create(customer, platform="windows", server_url="http://testserver").link
    DownloadEvent.objects.create(customer=customer, link=link, served=False, detail="expired")
    WizardDraft.objects.create(customer=customer, user=admin_user, platform="linux", step=2)
    QuarantinedChunk.objects.create(customer=customer, digest="ab" * 32, reason="CRC mismatch")
    MaintenanceRun.objects.create(kind=MaintenanceKind.GC, ok=True, summary={"freed_bytes": 0})
    ReplicationPolicy.objects.create(customer=customer, interval_minutes=60)
    ReplicationPolicy.objects.create(customer=customer, group=machine.group, keep_last=3)
    ReplicationPolicy.objects.create(customer=other_customer, machine=theirs, enabled=False)
    Group.objects.create(name="support")
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(event="sunrise", latitude=52.5, longitude=13.4)
    ClockedSchedule.objects.create(clocked_time=timezone.now() + timedelta(days=1))
    PeriodicTask.objects.create(name="housekeeping", task="celery.backend_cleanup", interval=every)
    return {"machine": machine, "theirs": theirs, "replicated": replicated}


def _admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def test_the_registry_covers_every_project_model():
    from django.apps import apps

    project = [
        m
        for app in ("tenants", "protection", "storage", "clouds")
        for m in apps.get_app_config(app).get_models()
    ]
    assert set(project) <= set(admin.site._registry)
    assert PeriodicTask in admin.site._registry


@pytest.mark.parametrize("model", [m for m, _ in _registered()], ids=lambda m: m._meta.label)
def test_every_admin_page_loads(staff, superuser, world, rf, model):
    model_admin = admin.site._registry[model]
    request = rf.get("/")
    request.user = superuser
    obj = model_admin.get_queryset(request).first()
    assert obj is not None, f"add a {model._meta.label} row to the `world` fixture"
    # Read-only admins (the store's catalog) refuse add and delete even to a superuser.
    for url, allowed in [
        (_admin_url(model, "changelist"), True),
        (_admin_url(model, "add"), model_admin.has_add_permission(request)),
        (_admin_url(model, "change", obj.pk), True),
        (_admin_url(model, "history", obj.pk), True),
        (_admin_url(model, "delete", obj.pk), model_admin.has_delete_permission(request, obj)),
    ]:
        response = staff.get(url)
        assert response.status_code == (200 if allowed else 403), url
    if model_admin.search_fields:
        assert staff.get(_admin_url(model, "changelist"), {"q": "a"}).status_code == 200


def test_changelists_show_every_customer(staff, world):
    body = staff.get(_admin_url(Machine, "changelist")).content.decode()
    assert "web-01" in body and "db-01" in body
    assert "Acme" in body and "Globex" in body


@pytest.mark.parametrize(
    ("model", "params", "shown", "hidden"),
    [
        (Machine, {"q": "db-"}, "db-01", "web-01"),
        (Machine, {"q": "globex"}, "db-01", "web-01"),
        (Machine, {"status__exact": "in_sync"}, "db-01", "web-01"),
        (
            Machine,
            {"platform__exact": "vmware", "customer__id__exact": "{acme}"},
            "web-01",
            "db-01",
        ),
        (Machine, {"group__id__exact": "{group}"}, "web-01", "db-01"),
        (Machine, {"q": "10.0.0.10", "customer__id__exact": "{globex}"}, "db-01", "web-01"),
        (MachineGroup, {"customer__id__exact": "{globex}"}, "Group ", "Web servers"),
        (Disk, {"q": "scsi0:0"}, "scsi0:0", "disk-"),
        (ReplicationPolicy, {"customer__id__exact": "{globex}"}, "machine db-01", "group Web"),
        (Customer, {"q": "glob"}, "Globex", "Acme"),
        (Membership, {"customer__id__exact": "{globex}"}, "@ globex", "@ acme"),
    ],
)
def test_search_and_filters(staff, world, customer, other_customer, model, params, shown, hidden):
    if model is MachineGroup:
        MachineGroupFactory(customer=other_customer)
    ids = {"acme": customer.pk, "globex": other_customer.pk, "group": world["machine"].group_id}
    params = {key: value.format(**ids) for key, value in params.items()}
    response = staff.get(_admin_url(model, "changelist"), params)
    assert response.status_code == 200
    result = response.content.decode().split('id="result_list"', 1)[1]
    assert shown in result
    assert hidden not in result


def test_group_filter_lists_groups_of_every_customer(staff, world):
    body = staff.get(_admin_url(Machine, "changelist")).content.decode()
    assert "Web servers · acme" in body
    assert f"{world['theirs'].group} · globex" in body


def test_autocomplete_searches_every_customer(staff, world):
    response = staff.get(
        reverse("admin:autocomplete"),
        {"app_label": "protection", "model_name": "disk", "field_name": "machine", "term": "01"},
    )
    assert response.status_code == 200
    names = {item["text"] for item in response.json()["results"]}
    assert names == {"web-01", "db-01"}


def _action(staff, model, action, objects):
    return staff.post(
        _admin_url(model, "changelist"),
        {"action": action, "_selected_action": [o.pk for o in objects]},
        follow=True,
    )


def test_customer_actions(staff, world, customer, other_customer):
    response = _action(staff, Customer, "deactivate", [customer, other_customer])
    assert "2 customer(s) deactivated." in response.content.decode()
    assert not Customer.objects.filter(is_active=True).exists()
    response = _action(staff, Customer, "activate", [customer])
    assert "1 customer(s) activated." in response.content.decode()
    customer.refresh_from_db(), other_customer.refresh_from_db()
    assert customer.is_active and not other_customer.is_active


def test_machine_protection_actions_across_customers(staff, world):
    mine, theirs = world["machine"], world["theirs"]  # unprotected, in sync
    response = _action(staff, Machine, "start_protection", [mine, theirs])
    assert "1 machine(s) protected (1 skipped: already protected)." in response.content.decode()
    mine.refresh_from_db()
    assert mine.status == MachineStatus.PROTECTED
    response = _action(staff, Machine, "stop_protection", [mine, theirs])
    assert "2 machine(s) unprotected." in response.content.decode()
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert mine.status == theirs.status == MachineStatus.UNPROTECTED


def test_delete_action_works_across_customers(staff, world):
    # The replicated disk has a snapshot (PROTECT: prune it first); every other disk goes.
    others = Disk.objects.all_customers().exclude(pk=world["replicated"].pk)
    response = staff.post(
        _admin_url(Disk, "changelist"),
        {
            "action": "delete_selected",
            "_selected_action": list(others.values_list("pk", flat=True)),
            "post": "yes",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert list(Disk.objects.all_customers()) == [world["replicated"]]


def test_a_disk_with_snapshots_cannot_be_deleted(staff, world):
    response = staff.post(
        _admin_url(Disk, "delete", world["replicated"].pk), {"post": "yes"}, follow=True
    )
    assert "Cannot delete disk" in response.content.decode()
    assert Disk.objects.all_customers().filter(pk=world["replicated"].pk).exists()


def _machine_form(customer, group, **extra):
    return {
        "customer": customer.pk,
        "name": "new-vm",
        "platform": "linux",
        "group": group.pk if group else "",
        "external_id": "",
        "os_name": "",
        "ip_addresses": "[]",
        "status": "unprotected",
        "status_message": "",
        "disks-TOTAL_FORMS": "1",
        "disks-INITIAL_FORMS": "0",
        "disks-MIN_NUM_FORMS": "0",
        "disks-MAX_NUM_FORMS": "1000",
        "disks-0-key": "sda",
        "disks-0-label": "root",
        "disks-0-size_bytes": "1073741824",
        **extra,
    }


def test_add_machine_picks_the_customer_and_disks_follow(staff, world, customer):
    group = world["machine"].group
    response = staff.post(_admin_url(Machine, "add"), _machine_form(customer, group))
    assert response.status_code == 302, response.context["adminform"].form.errors
    machine = Machine.objects.for_customer(customer).get(name="new-vm")
    assert machine.group == group
    assert machine.disks.get().customer == customer


def test_cross_customer_group_on_a_machine_is_rejected(staff, world, customer, other_customer):
    theirs = world["theirs"].group
    response = staff.post(_admin_url(Machine, "add"), _machine_form(customer, theirs))
    assert response.status_code == 200
    assert "belongs to the customer Globex, not to Acme" in response.content.decode()
    assert not Machine.objects.all_customers().filter(name="new-vm").exists()


def test_change_page_offers_only_the_rows_customer_and_refuses_others(staff, world):
    mine, theirs = world["machine"], world["theirs"]
    url = _admin_url(Machine, "change", mine.pk)
    form = staff.get(url).context["adminform"].form
    assert list(form.fields["group"].queryset) == [mine.group]
    assert "customer" not in form.fields  # read-only once created
    data = _machine_form(mine.customer, theirs.group, name="web-01")
    data.pop("customer")
    data["disks-TOTAL_FORMS"] = "0"
    response = staff.post(url, data)
    assert response.status_code == 200
    mine.refresh_from_db()
    assert mine.group != theirs.group


def test_cross_customer_machine_on_a_disk_is_rejected(staff, world, customer):
    response = staff.post(
        _admin_url(Disk, "add"),
        {
            "customer": customer.pk,
            "machine": world["theirs"].pk,
            "key": "x",
            "label": "",
            "size_bytes": "1",
        },
    )
    assert response.status_code == 200
    assert "belongs to the customer Globex" in response.content.decode()


def test_duplicate_group_name_is_a_form_error(staff, world, customer, other_customer):
    url = _admin_url(MachineGroup, "add")
    response = staff.post(url, {"customer": customer.pk, "name": "WEB SERVERS", "description": ""})
    assert response.status_code == 200
    assert "Acme already has a group named" in response.content.decode()
    response = staff.post(url, {"customer": other_customer.pk, "name": "Web servers"})
    assert response.status_code == 302
    assert MachineGroup.objects.for_customer(other_customer).filter(name="Web servers").exists()


def test_policy_for_both_a_group_and_a_machine_is_rejected(staff, world, customer):
    machine = world["machine"]
    response = staff.post(
        _admin_url(ReplicationPolicy, "add"),
        {"customer": customer.pk, "group": machine.group_id, "machine": machine.pk},
    )
    assert response.status_code == 200
    assert "choose a group or a machine, not both" in response.content.decode()


def test_customer_page_shows_members_and_user_page_shows_customers(staff, world, admin_user):
    customer_page = staff.get(
        _admin_url(Customer, "change", admin_user.memberships.get().customer_id)
    )
    assert admin_user.username in customer_page.content.decode()
    user_page = staff.get(_admin_url(User, "change", admin_user.pk))
    assert user_page.status_code == 200
    assert "Acme" in user_page.content.decode()
