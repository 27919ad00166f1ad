"""Agent credential authentication on every agent endpoint."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clouds.models import Agent, AgentCredential
from clouds.services import agent_credential_revoke, agent_credential_rotate

from .conftest import API, client_for, error_of, post

ENDPOINTS = [
    ("post", "heartbeat/"),
    ("post", "inventory/"),
    ("post", "events/"),
    ("post", "jobs/next/"),
    ("post", "jobs/"),
    ("get", "jobs/1/"),
    ("post", "jobs/1/progress/"),
    ("post", "jobs/1/result/"),
    ("post", "upload-sessions/"),
    ("get", "snapshots/"),
]


def _call(client, method, path):
    if method == "get":
        return client.get(API + path)
    return post(client, path)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_credential_is_401_with_a_challenge(anon, db, method, path):
    response = _call(anon, method, path)
    error_of(response, 401, "Authorization: Bearer acag_")
    assert response["WWW-Authenticate"] == 'Bearer realm="acura-agent"'


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_revoked_credential_is_401_everywhere(enrolled, api, method, path):
    agent_credential_revoke(enrolled.agent)
    error_of(_call(api, method, path), 401, "This agent credential was revoked")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer", "Malformed agent credential"),
        ("Bearer acag_abc", "Malformed agent credential"),
        ("Bearer acet_abc.def", "Malformed agent credential"),
        ("Bearer acag_000000000000.secret", "Unknown agent credential."),
    ],
)
def test_malformed_and_unknown_credentials(anon, db, header, message):
    anon.credentials(HTTP_AUTHORIZATION=header)
    error_of(post(anon, "heartbeat/"), 401, message)


def test_wrong_secret_is_401_and_not_a_use(enrolled):
    error_of(post(client_for(enrolled.text + "x"), "heartbeat/"), 401, "Unknown agent credential.")
    enrolled.credential.refresh_from_db()
    assert enrolled.credential.last_used_at is None


def test_inactive_customer_is_401(customer, api):
    customer.is_active = False
    customer.save()
    error_of(post(api, "heartbeat/"), 401, "The customer of this agent is inactive.")


def test_a_rotated_credential_replaces_the_old_one(enrolled, api):
    _credential, text = agent_credential_rotate(enrolled.agent)
    error_of(post(api, "heartbeat/", {"version": "1", "hostname": "h"}), 401, "revoked")
    assert (
        post(client_for(text), "heartbeat/", {"version": "1", "hostname": "h"}).status_code == 200
    )


def test_portal_login_is_not_an_agent(admin_client_):
    response = admin_client_.post(API + "heartbeat/", {}, content_type="application/json")
    error_of(response, 401)


def test_use_is_stamped_at_most_once_a_minute(customer, enrolled, api):
    credentials = AgentCredential.objects.for_customer(customer)
    agents = Agent.objects.for_customer(customer)
    assert api.get(API + "snapshots/").status_code == 200
    first = credentials.get().last_used_at
    assert first is not None and agents.get().last_seen_at is not None
    assert api.get(API + "snapshots/").status_code == 200
    assert credentials.get().last_used_at == first  # within the minute: no write
    earlier = timezone.now() - timedelta(minutes=2)
    credentials.update(last_used_at=earlier)
    agents.update(last_seen_at=earlier)
    assert api.get(API + "snapshots/").status_code == 200
    assert credentials.get().last_used_at > earlier and agents.get().last_seen_at > earlier
