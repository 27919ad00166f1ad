"""Enrollment tokens and agent credentials: made once, stored hashed, refused clearly."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from clouds.models import Agent, AgentCredential, AgentStatus, Cloud, EnrollmentToken
from clouds.services import (
    EnrollmentRefused,
    agent_credential_revoke,
    agent_credential_rotate,
    agent_enroll,
    enrollment_token_create,
    enrollment_token_revoke,
)
from clouds.tokens import hash_secret
from tests.factories import MachineGroupFactory

from .conftest import enroll, make_token


def test_token_is_shown_once_and_stored_hashed(customer, group, admin_user):
    new = make_token(
        customer, "vmware", group=group, expires_hours=2, max_uses=3, created_by=admin_user
    )
    token = EnrollmentToken.objects.for_customer(customer).get()
    assert new.token == token
    prefix, secret = new.text.removeprefix("acet_").split(".")
    assert token.prefix == prefix and token.secret_hash == hash_secret(secret)
    assert secret not in token.secret_hash
    assert (token.platform, token.group, token.max_uses, token.uses) == ("vmware", group, 3, 0)
    assert token.created_by == admin_user
    left = token.expires_at - timezone.now()
    assert timedelta(hours=1, minutes=59) < left <= timedelta(hours=2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"platform": "solaris"}, "platform"),
        ({"expires_hours": 0}, "expires_hours"),
        ({"expires_hours": 24 * 366}, "expires_hours"),
        ({"expires_hours": "24"}, "expires_hours"),
        ({"max_uses": 0}, "max_uses"),
        ({"max_uses": True}, "max_uses"),
        ({"max_uses": 10_001}, "max_uses"),
    ],
)
def test_bad_token_values_create_nothing(customer, kwargs, field):
    with pytest.raises(ValidationError) as info:
        enrollment_token_create(customer, **{"platform": "linux", **kwargs})
    assert field in info.value.message_dict
    assert not EnrollmentToken.objects.for_customer(customer).exists()


def test_group_and_cloud_of_another_customer_are_refused(customer, other_customer):
    theirs = MachineGroupFactory(customer=other_customer)
    cloud = Cloud.objects.create(customer=other_customer, name="vc", platform="vmware")
    with pytest.raises(ValidationError) as info:
        enrollment_token_create(customer, platform="vmware", group=theirs, cloud=cloud)
    assert info.value.message_dict == {"group": ["No such group."], "cloud": ["No such cloud."]}


def test_cloud_must_match_the_platform(customer):
    cloud = Cloud.objects.create(customer=customer, name="engine", platform="ovirt")
    with pytest.raises(ValidationError, match="oVirt"):
        enrollment_token_create(customer, platform="vmware", cloud=cloud)


def test_enroll_creates_a_pending_agent_from_the_token(customer, group):
    cloud = Cloud.objects.create(customer=customer, name="vc-1", platform="vmware")
    new = make_token(customer, "vmware", group=group, cloud=cloud)
    enrolled = agent_enroll(new.text, hostname=" esx-proxy ", version="2.1", platform="vmware")
    agent = Agent.objects.for_customer(customer).get()
    assert enrolled.agent == agent
    assert (agent.platform, agent.group, agent.cloud, agent.status) == (
        "vmware",
        group,
        cloud,
        AgentStatus.PENDING,
    )
    assert (agent.hostname, agent.version, agent.enrolled_with) == ("esx-proxy", "2.1", new.token)
    assert agent.display_id == f"{agent.pk} ({cloud.pk})@{customer.pk}"
    credential = AgentCredential.objects.for_customer(customer).get()
    prefix, secret = enrolled.text.removeprefix("acag_").split(".")
    assert credential.prefix == prefix and credential.secret_hash == hash_secret(secret)
    assert credential.last4 == enrolled.text[-4:] and credential.agent == agent
    new.token.refresh_from_db()
    assert new.token.uses == 1


def _refused(text, message, **kwargs):
    with pytest.raises(EnrollmentRefused) as info:
        agent_enroll(text, hostname="h", version="1", **kwargs)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        ({"revoked_at": timezone.now()}, "This enrollment token was revoked."),
        (
            {"expires_at": timezone.now() - timedelta(seconds=1)},
            "This enrollment token has expired.",
        ),
        ({"uses": 2, "max_uses": 2}, "This enrollment token has been used up."),
    ],
)
def test_unusable_tokens_are_refused_and_change_nothing(customer, mutation, message):
    new = make_token(customer)
    EnrollmentToken.objects.for_customer(customer).filter(pk=new.token.pk).update(**mutation)
    _refused(new.text, message)
    assert not Agent.objects.for_customer(customer).exists()
    new.token.refresh_from_db()
    assert new.token.uses == mutation.get("uses", 0)


def test_unknown_and_malformed_tokens(customer):
    new = make_token(customer)
    _refused(new.text + "x", "Unknown enrollment token.")
    _refused("acet_000000000000.secret", "Unknown enrollment token.")
    for text in ("", "nonsense", "acag_" + new.text[5:], "acet_", "acet_abc."):
        with pytest.raises(EnrollmentRefused, match="not an enrollment token"):
            agent_enroll(text, hostname="h", version="1")
    new.token.refresh_from_db()
    assert new.token.uses == 0


def test_inactive_customer_cannot_enroll(customer):
    new = make_token(customer)
    customer.is_active = False
    customer.save()
    _refused(new.text, "The customer of this enrollment token is inactive.")


def test_a_token_with_uses_left_enrolls_several_agents(customer):
    new = make_token(customer, max_uses=2)
    first = agent_enroll(new.text, hostname="a", version="1")
    second = agent_enroll(new.text, hostname="b", version="1")
    assert first.agent != second.agent and first.text != second.text
    _refused(new.text, "This enrollment token has been used up.")
    assert Agent.objects.for_customer(customer).count() == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hostname": ""}, "hostname"),
        ({"hostname": "h" * 256}, "hostname"),
        ({"hostname": 7}, "hostname"),
        ({"version": "v" * 65}, "version"),
        ({"platform": "amiga"}, "platform"),
        ({"platform": "windows"}, "platform"),  # the token is a Linux one
    ],
)
def test_bad_enroll_values_spend_no_use(customer, kwargs, field):
    new = make_token(customer)
    with pytest.raises(ValidationError) as info:
        agent_enroll(new.text, **{"hostname": "h", "version": "1", **kwargs})
    assert field in info.value.message_dict
    new.token.refresh_from_db()
    assert new.token.uses == 0
    assert not Agent.objects.for_customer(customer).exists()


@pytest.mark.django_db(transaction=True)
def test_racing_enrollments_cannot_both_take_the_last_use(customer):
    new = make_token(customer, max_uses=1)
    results, barrier = [], threading.Barrier(4)

    def attempt(n):
        barrier.wait()
        try:
            results.append(agent_enroll(new.text, hostname=f"h{n}", version="1"))
        except EnrollmentRefused as exc:
            results.append(exc)
        except Exception as exc:  # SQLite: a locked database is a refusal too
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert Agent.objects.for_customer(customer).count() == 1
    new.token.refresh_from_db()
    assert new.token.uses == 1


def test_revoke_token_twice(customer):
    new = make_token(customer)
    assert enrollment_token_revoke(new.token) is True
    first = new.token.revoked_at
    assert enrollment_token_revoke(new.token) is False
    assert new.token.revoked_at == first


def test_enrolled_agents_outlive_their_token(customer):
    enrolled = enroll(customer)
    enrollment_token_revoke(enrolled.agent.enrolled_with)
    assert AgentCredential.objects.for_customer(customer).get().revoked_at is None


def test_credential_revoke_and_rotate(customer):
    enrolled = enroll(customer)
    agent = enrolled.agent
    credential, text = agent_credential_rotate(agent)
    assert text != enrolled.text and credential.last4 == text[-4:]
    enrolled.credential.refresh_from_db()
    assert enrolled.credential.revoked_at is not None
    active = AgentCredential.objects.for_customer(customer).filter(revoked_at__isnull=True)
    assert list(active) == [credential]
    assert agent_credential_revoke(agent) == 1
    assert agent_credential_revoke(agent) == 0
    assert not active.all().exists()
