"""``POST /api/v1/agent/enroll/``: a token in, a credential out; refusals are 401."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from clouds.models import Agent, AgentCredential, Cloud, EnrollmentToken

from .conftest import API, client_for, error_of, make_token, post


def _enroll(anon, token, **extra):
    return post(anon, "enroll/", {"token": token, "hostname": "esx-1", "version": "1.0", **extra})


@override_settings(AGENT_HEARTBEAT_SECONDS=17)
def test_enroll_answers_the_agent_identity_and_credential(anon, customer, group):
    cloud = Cloud.objects.create(customer=customer, name="vc", platform="vmware")
    new = make_token(customer, "vmware", group=group, cloud=cloud)
    response = _enroll(anon, new.text, platform="vmware")
    assert response.status_code == 201, response.content
    body = response.json()
    agent = Agent.objects.for_customer(customer).get()
    assert body == {
        "agent_id": agent.pk,
        "display_id": f"{agent.pk} ({cloud.pk})@{customer.pk}",
        "credential": body["credential"],
        "customer": {"id": customer.pk, "slug": "acme"},
        "cloud_id": cloud.pk,
        "platform": "vmware",
        "group": {"id": group.pk, "name": "Web servers"},
        "heartbeat_seconds": 17,
    }
    assert body["credential"].startswith("acag_")
    # The credential works at once.
    heartbeat = post(
        client_for(body["credential"]), "heartbeat/", {"version": "1", "hostname": "h"}
    )
    assert heartbeat.status_code == 200


def test_enroll_without_group_answers_null(anon, customer):
    body = _enroll(anon, make_token(customer).text).json()
    assert body["group"] is None and body["cloud_id"] is None
    assert body["display_id"].endswith(f" (-)@{customer.pk}")


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        ({"revoked_at": timezone.now()}, "This enrollment token was revoked."),
        (
            {"expires_at": timezone.now() - timedelta(minutes=1)},
            "This enrollment token has expired.",
        ),
        ({"uses": 1}, "This enrollment token has been used up."),
    ],
)
def test_unusable_token_is_401(anon, customer, mutation, message):
    new = make_token(customer)
    EnrollmentToken.objects.for_customer(customer).filter(pk=new.token.pk).update(**mutation)
    error_of(_enroll(anon, new.text), 401, message)
    assert not Agent.objects.for_customer(customer).exists()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("WRONG", "Unknown enrollment token."),
        ("acet_ffffffffffff.secret", "Unknown enrollment token."),
        ("garbage", "not an enrollment token"),
        (None, "not an enrollment token"),
        (12, "not an enrollment token"),
    ],
)
def test_wrong_token_is_401(anon, customer, token, message):
    new = make_token(customer)
    text = new.text + "x" if token == "WRONG" else token
    error_of(_enroll(anon, text), 401, message)
    assert not AgentCredential.objects.for_customer(customer).exists()
    new.token.refresh_from_db()
    assert new.token.uses == 0


def test_a_credential_is_not_an_enrollment_token(anon, customer, enrolled):
    error_of(_enroll(anon, enrolled.text), 401, "not an enrollment token")


def test_inactive_customer_is_401(anon, customer):
    new = make_token(customer)
    customer.is_active = False
    customer.save()
    error_of(_enroll(anon, new.text), 401, "inactive")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"hostname": ""}, "hostname"),
        ({"hostname": "h" * 300}, "hostname"),
        ({"hostname": ["a"]}, "hostname"),
        ({"version": "v" * 65}, "version"),
        ({"platform": "windows"}, "platform"),
        ({"platform": "beos"}, "platform"),
    ],
)
def test_bad_input_is_400_and_spends_no_use(anon, customer, extra, field):
    new = make_token(customer)
    error = error_of(_enroll(anon, new.text, **extra), 400)
    assert field in error["details"]
    new.token.refresh_from_db()
    assert new.token.uses == 0
    assert not Agent.objects.for_customer(customer).exists()


def test_platform_mismatch_message(anon, customer):
    error = error_of(_enroll(anon, make_token(customer).text, platform="windows"), 400)
    assert error["details"]["platform"] == ["This token enrolls Linux agents, not Windows."]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{", "not valid JSON"), (b"[]", "must be a JSON object")],
)
def test_unparsable_body_is_400(anon, body, message):
    response = anon.generic("POST", API + "enroll/", body, "application/json")
    error_of(response, 400, message)


def test_huge_body_is_413(anon, customer):
    body = {"token": make_token(customer).text, "hostname": "h" * 100_000, "version": "1"}
    error_of(post(anon, "enroll/", body), 413)
