"""Provider edits of replication policies obey the same rules as the settings pages."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from protection.models import KEEP_FIELDS, ReplicationPolicy


@pytest.fixture
def superuser_client(db):
    user = get_user_model().objects.create_superuser("root-admin", "r@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _post(client, customer, **values):
    data = {"customer": customer.pk, "group": "", "machine": ""}
    data.update({k: "" if v is None else v for k, v in values.items()})
    return client.post("/admin/protection/replicationpolicy/add/", data)


def test_admin_refuses_a_policy_that_keeps_nothing(superuser_client, customer):
    keep_zero = dict.fromkeys(KEEP_FIELDS, 0)
    response = _post(superuser_client, customer, **keep_zero)
    assert response.status_code == 200
    assert "would keep no snapshots" in response.content.decode()
    assert not ReplicationPolicy.objects.all_customers().exists()


def test_admin_refuses_a_window_that_starts_where_it_ends(superuser_client, customer):
    response = _post(superuser_client, customer, window_start="22:00", window_end="22:00")
    assert response.status_code == 200
    assert "window end must differ from its start" in response.content.decode()
    assert not ReplicationPolicy.objects.all_customers().exists()


def test_admin_accepts_a_valid_policy(superuser_client, customer):
    response = _post(superuser_client, customer, interval_minutes=30, keep_daily=3)
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = ReplicationPolicy.objects.for_customer(customer).get()
    assert (policy.interval_minutes, policy.keep_daily) == (30, 3)
