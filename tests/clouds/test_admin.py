"""The provider admin of clouds and agents: secrets shown once, revocation, no hand-made
agents or credentials, no deleting an agent that is running a job."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from clouds.models import Agent, AgentCredential, AgentEvent, Cloud, EnrollmentToken
from clouds.services import EnrollmentRefused, agent_enroll
from protection.services.jobs import job_start_for_agent
from tests.factories import MachineGroupFactory

from .conftest import client_for, enroll, make_token, post, protected_machine


@pytest.fixture
def staff(db):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "x"))
    return client


def url(model, view, *args):
    return reverse(f"admin:clouds_{model._meta.model_name}_{view}", args=args)


def _action(staff, model, action, objects):
    return staff.post(
        url(model, "changelist"),
        {"action": action, "_selected_action": [o.pk for o in objects]},
        follow=True,
    )


def test_token_created_in_the_admin_is_shown_once_and_enrolls(staff, customer, group):
    response = staff.post(
        url(EnrollmentToken, "add"),
        {
            "customer": customer.pk,
            "platform": "linux",
            "group": group.pk,
            "expires_hours": 6,
            "max_uses": 2,
        },
        follow=True,
    )
    assert response.status_code == 200
    text = re.search(r"acet_[0-9a-f]{12}\.[A-Za-z0-9_-]+", response.content.decode()).group(0)
    token = EnrollmentToken.objects.for_customer(customer).get()
    assert text.startswith(f"acet_{token.prefix}.") and token.secret_hash not in text
    assert (token.group, token.max_uses, token.created_by.username) == (group, 2, "root")
    assert agent_enroll(text, hostname="h", version="1").agent.group == group
    # The change page never shows it again.
    assert text not in staff.get(url(EnrollmentToken, "change", token.pk)).content.decode()


def test_token_with_a_group_of_another_customer_is_a_form_error(staff, customer, other_customer):
    theirs = MachineGroupFactory(customer=other_customer)
    response = staff.post(
        url(EnrollmentToken, "add"),
        {
            "customer": customer.pk,
            "platform": "linux",
            "group": theirs.pk,
            "expires_hours": 6,
            "max_uses": 1,
        },
    )
    assert response.status_code == 200 and "belongs to the customer" in response.content.decode()
    assert not EnrollmentToken.objects.all_customers().exists()


def test_token_with_a_cloud_of_another_platform_is_a_form_error(staff, customer):
    cloud = Cloud.objects.create(customer=customer, name="engine", platform="ovirt")
    response = staff.post(
        url(EnrollmentToken, "add"),
        {
            "customer": customer.pk,
            "platform": "vmware",
            "cloud": cloud.pk,
            "expires_hours": 6,
            "max_uses": 1,
        },
    )
    assert "is a oVirt/zVirt platform" in response.content.decode()
    assert not EnrollmentToken.objects.all_customers().exists()


def test_revoke_token_action(staff, customer):
    new = make_token(customer, max_uses=2)
    response = _action(staff, EnrollmentToken, "revoke", [new.token])
    assert "1 enrollment token(s) revoked." in response.content.decode()
    with pytest.raises(EnrollmentRefused, match="revoked"):
        agent_enroll(new.text, hostname="h", version="1")


def test_agent_list_shows_display_id_status_and_last_seen(staff, customer, other_customer):
    mine = enroll(customer)
    theirs = enroll(other_customer)
    post(client_for(mine.text), "heartbeat/", {"version": "3.1", "hostname": "proxy-a"})
    body = staff.get(url(Agent, "changelist")).content.decode()
    assert mine.agent.display_id in body and theirs.agent.display_id in body
    assert "Online" in body and "Pending" in body and "proxy-a" in body
    assert staff.get(url(Agent, "add")).status_code == 403


def test_revoke_credentials_action(staff, customer, other_customer):
    mine, theirs = enroll(customer), enroll(other_customer)
    response = _action(staff, Agent, "revoke_credentials", [mine.agent, theirs.agent])
    assert "Credentials of 2 agent(s) revoked" in response.content.decode()
    assert post(client_for(mine.text), "heartbeat/").status_code == 401
    assert post(client_for(theirs.text), "heartbeat/").status_code == 401


def test_debug_logging_is_editable(staff, customer):
    agent = enroll(customer).agent
    response = staff.post(url(Agent, "change", agent.pk), {"debug_logging": "on"})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.debug_logging is True


def test_an_agent_running_a_job_cannot_be_deleted(staff, customer):
    agent = enroll(customer).agent
    job = job_start_for_agent(customer, agent, protected_machine(agent))
    page = staff.get(url(Agent, "delete", agent.pk)).content.decode()
    assert f"Job {job.pk} of {job.machine} is running: cancel the job first" in page
    assert staff.post(url(Agent, "delete", agent.pk), {"post": "yes"}).status_code == 200
    response = staff.post(
        url(Agent, "changelist"),
        {"action": "delete_selected", "_selected_action": [agent.pk], "post": "yes"},
        follow=True,
    )
    assert "cancel the job first" in response.content.decode()
    assert Agent.objects.for_customer(customer).filter(pk=agent.pk).exists()


def test_an_idle_agent_is_deleted_with_its_credentials(staff, customer):
    agent = enroll(customer).agent
    response = staff.post(url(Agent, "delete", agent.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Agent.objects.for_customer(customer).exists()
    assert not AgentCredential.objects.for_customer(customer).exists()


def test_credentials_are_read_only_and_revocable(staff, customer):
    enrolled = enroll(customer)
    credential = enrolled.credential
    assert staff.get(url(AgentCredential, "add")).status_code == 403
    page = staff.get(url(AgentCredential, "change", credential.pk)).content.decode()
    assert credential.last4 in page and 'name="_save"' not in page
    assert enrolled.text not in page and credential.secret_hash not in page
    response = _action(staff, AgentCredential, "revoke", [credential])
    assert "1 credential(s) revoked." in response.content.decode()
    assert post(client_for(enrolled.text), "heartbeat/").status_code == 401


def test_events_are_read_only(staff, customer):
    agent = enroll(customer).agent
    AgentEvent.objects.create(
        customer=customer, agent=agent, message="disk slow", occurred_at="2026-01-01T00:00Z"
    )
    assert staff.get(url(AgentEvent, "add")).status_code == 403
    body = staff.get(url(AgentEvent, "changelist"), {"q": "slow"}).content.decode()
    assert "disk slow" in body
