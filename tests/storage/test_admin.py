"""The provider admin of the store: the catalog is read-only, and the few writes it offers
(protect, delete a snapshot, create a store) keep the store consistent."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from storage.models import Chunk, CustomerStore, Snapshot
from tests.factories import CustomerFactory

from .conftest import CHUNK, make_disk


@pytest.fixture
def staff(db):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "x"))
    return client


@pytest.fixture
def snapshot(agent, customer):
    result = agent.replicate(make_disk(customer), bytes(range(256)) * (3 * CHUNK // 256))
    return Snapshot.objects.for_customer(customer).get(pk=result["snapshot"]["id"])


def url(model, view, *args):
    return reverse(f"admin:storage_{model._meta.model_name}_{view}", args=args)


def test_catalog_rows_are_read_only(staff, snapshot, customer):
    chunk = Chunk.objects.for_customer(customer).first()
    assert staff.get(url(Chunk, "add")).status_code == 403
    assert staff.get(url(Chunk, "delete", chunk.pk)).status_code == 403
    page = staff.get(url(Chunk, "change", chunk.pk))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_protect_through_the_change_page_and_actions(staff, snapshot):
    response = staff.post(url(Snapshot, "change", snapshot.pk), {"protected": "on"})
    assert response.status_code == 302
    snapshot.refresh_from_db()
    assert snapshot.protected is True
    staff.post(
        url(Snapshot, "changelist"), {"action": "unprotect", "_selected_action": [snapshot.pk]}
    )
    snapshot.refresh_from_db()
    assert snapshot.protected is False


def test_a_protected_snapshot_cannot_be_deleted(staff, snapshot, customer):
    Snapshot.objects.for_customer(customer).filter(pk=snapshot.pk).update(protected=True)
    response = staff.post(url(Snapshot, "delete", snapshot.pk), {"post": "yes"})
    assert "is protected: release it first" in response.content.decode()
    assert Snapshot.objects.for_customer(customer).filter(pk=snapshot.pk).exists()
    Snapshot.objects.for_customer(customer).filter(pk=snapshot.pk).update(protected=False)
    assert staff.post(url(Snapshot, "delete", snapshot.pk), {"post": "yes"}).status_code == 302
    assert not Snapshot.objects.for_customer(customer).filter(pk=snapshot.pk).exists()


def test_a_store_with_data_cannot_be_deleted(staff, snapshot, customer):
    store = CustomerStore.objects.get(customer=customer)
    response = staff.post(url(CustomerStore, "delete", store.pk), {"post": "yes"})
    assert "this row holds their data key" in response.content.decode()
    assert CustomerStore.objects.filter(pk=store.pk).exists()


def test_adding_a_store_makes_a_random_namespace(staff, db):
    newcomer = CustomerFactory(slug="newco")
    response = staff.post(url(CustomerStore, "add"), {"customer": newcomer.pk})
    assert response.status_code == 302
    store = CustomerStore.objects.get(customer=newcomer)
    assert re.fullmatch(r"[0-9a-f]{32}", store.namespace)
    again = staff.post(url(CustomerStore, "add"), {"customer": newcomer.pk})
    assert again.status_code == 200  # one store per customer: a form error
    assert CustomerStore.objects.filter(customer=newcomer).count() == 1
