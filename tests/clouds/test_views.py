"""Agent pages: the list (search, filters, pagination, empty state), the detail page
(credentials, events with a level filter, machines) and the admin's writes (revoke the
credential, debug logging, delete), each role, and bad input that changes nothing."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clouds.models import Agent, AgentCredential, AgentEvent, AgentStatus, EventLevel
from protection.models import JobTrigger, Machine, MachineStatus
from protection.services.jobs import job_queue, job_take_next
from tenants.models import Role
from tests.factories import MachineFactory

from .conftest import client_for, enroll, post

ROLES = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


def list_url(slug="acme"):
    return reverse("clouds:agent_list", args=[slug])


def detail_url(agent, slug="acme"):
    return reverse("clouds:agent_detail", args=[slug, agent.pk])


def action_url(name, agent, slug="acme"):
    return reverse(f"clouds:agent_{name}", args=[slug, agent.pk])


def texts(response):
    return [str(m) for m in response.context["messages"]]


def set_status(agent, status, **fields):
    Agent.objects.for_customer(agent.customer_id).filter(pk=agent.pk).update(
        status=status, **fields
    )
    agent.refresh_from_db()


def active_credentials(agent):
    return AgentCredential.objects.for_customer(agent.customer_id).filter(
        agent=agent, revoked_at__isnull=True
    )


# --- The list -----------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ROLES, indirect=True)
def test_every_role_sees_the_list(role_client, customer, agent, group):
    set_status(agent, AgentStatus.ONLINE, last_seen_at=timezone.now() - timedelta(minutes=3))
    MachineFactory(customer=customer, agent=agent)
    MachineFactory(customer=customer, agent=agent)
    response = role_client.get(list_url())
    assert response.status_code == 200
    [row] = response.context["agents"]
    assert row.machine_count == 2
    content = response.content.decode()
    assert f"<code>{agent.pk} (-)@{customer.pk}</code>" in content
    for text in ("Linux", "host-1", "1.0", "Online", "3\xa0minutes ago", "Web servers"):
        assert text in content, text


def test_the_list_shows_only_the_customers_agents(viewer_client, agent, other_enrolled):
    response = viewer_client.get(list_url())
    assert [a.pk for a in response.context["agents"]] == [agent.pk]
    assert b"globex-host" not in response.content


def test_search_and_status_filter(viewer_client, customer):
    db = enroll(customer, hostname="db-backup").agent
    web = enroll(customer, hostname="web-proxy").agent
    set_status(web, AgentStatus.OFFLINE)

    def ids(query):
        return [a.pk for a in viewer_client.get(list_url() + query).context["agents"]]

    assert ids("?q=backup") == [db.pk]
    assert ids(f"?q={web.pk}") == [web.pk]
    assert ids("?status=offline") == [web.pk]
    assert ids("?status=pending") == [db.pk]
    assert ids("?status=bogus") == [db.pk, web.pk]  # an unknown filter is dropped
    assert b"agents-no-match" in viewer_client.get(list_url() + "?q=nothing-like-it").content


def test_the_list_paginates(viewer_client, customer):
    for i in range(52):
        enroll(customer, hostname=f"h-{i}")
    second = viewer_client.get(list_url() + "?page=2")
    assert len(second.context["agents"]) == 2
    assert "Page 2 of 2 · 52 agents" in second.content.decode()


def test_empty_state_explains_enrollment(viewer_client):
    content = viewer_client.get(list_url()).content.decode()
    assert 'data-testid="agents-empty"' in content
    assert "manage.py create_enrollment_token --customer acme --platform linux" in content


def test_the_nav_links_to_agents(viewer_client):
    content = viewer_client.get(list_url()).content.decode()
    assert f'<a href="{list_url()}" class="active">Agents</a>' in content
    assert f'href="{reverse("clouds:wizard_start", args=["acme"])}"' in content
    assert f'href="{reverse("clouds:cloud_list", args=["acme"])}"' in content
    assert "<small>soon</small>" not in content


def test_list_query_count_does_not_grow(viewer_client, customer, django_assert_max_num_queries):
    for i in range(30):
        agent = enroll(customer, hostname=f"h-{i}").agent
        MachineFactory(customer=customer, agent=agent)
    with django_assert_max_num_queries(8):
        assert viewer_client.get(list_url()).status_code == 200


# --- The detail page ----------------------------------------------------------------------


@pytest.fixture
def events(customer, agent):
    now = timezone.now()
    levels = [EventLevel.DEBUG, EventLevel.INFO, EventLevel.WARNING, EventLevel.ERROR]
    return AgentEvent.objects.bulk_create(
        AgentEvent(
            customer=customer,
            agent=agent,
            level=levels[i % 4],
            message=f"event {i:03d}",
            occurred_at=now - timedelta(seconds=i),
        )
        for i in range(120)
    )


@pytest.mark.parametrize("role_client", ROLES, indirect=True)
def test_every_role_sees_the_detail(role_client, customer, enrolled, agent):
    machine = MachineFactory(customer=customer, agent=agent, name="reported-01")
    response = role_client.get(detail_url(agent))
    assert response.status_code == 200
    content = response.content.decode()
    assert f"<code>…{enrolled.credential.last4}</code>" in content
    assert enrolled.text not in content
    assert enrolled.text.split(".")[-1] not in content
    assert machine.name in content
    is_admin = role_client.get(list_url()).wsgi_request.membership.role == Role.ADMIN
    assert ('data-testid="revoke-credential"' in content) is is_admin
    assert ('data-testid="debug-on"' in content) is is_admin
    assert ('data-testid="agent-delete-link"' in content) is is_admin


def test_events_are_paginated_newest_first(viewer_client, agent, events):
    response = viewer_client.get(detail_url(agent))
    page = response.context["events_page"]
    assert page.paginator.count == 120
    assert [e.message for e in page.object_list][:2] == ["event 000", "event 001"]
    third = viewer_client.get(detail_url(agent) + "?events_page=3").context["events_page"]
    assert len(third.object_list) == 20


def test_event_level_filter_keeps_that_level_and_above(viewer_client, agent, events):
    def levels(query):
        page = viewer_client.get(detail_url(agent) + query).context["events_page"]
        return page.paginator.count, {e.level for e in page.object_list}

    assert levels("?level=warning") == (60, {"warning", "error"})
    assert levels("?level=error") == (30, {"error"})
    assert levels("?level=debug")[0] == 120
    assert levels("?level=bogus")[0] == 120


def test_machines_of_the_agent_are_paginated(viewer_client, customer, agent):
    for i in range(30):
        MachineFactory(customer=customer, agent=agent, name=f"m-{i:02d}")
    MachineFactory(customer=customer, name="not-this-agents")
    response = viewer_client.get(detail_url(agent) + "?machines_page=2")
    page = response.context["machines_page"]
    assert page.paginator.count == 30
    assert [m.name for m in page.object_list] == [f"m-{i}" for i in range(25, 30)]


def test_detail_shows_revoked_credentials(viewer_client, customer, enrolled, agent):
    from clouds.services import agent_credential_rotate

    agent_credential_rotate(agent)
    content = viewer_client.get(detail_url(agent)).content.decode()
    assert content.count('data-testid="credential-row"') == 2
    assert "Revoked " in content and ">Active<" in content


# --- Revoke credential --------------------------------------------------------------------


def test_admin_revokes_the_credential_and_the_agent_is_refused(
    admin_client_, customer, enrolled, agent
):
    api = client_for(enrolled.text)
    assert post(api, "heartbeat/", {"version": "1.0", "hostname": "host-1"}).status_code == 200
    response = admin_client_.post(action_url("credential_revoke", agent), follow=True)
    assert "was revoked: the agent can no longer connect" in texts(response)[0]
    assert not active_credentials(agent).exists()
    assert post(api, "heartbeat/", {"version": "1.0", "hostname": "host-1"}).status_code == 401
    again = admin_client_.post(action_url("credential_revoke", agent), follow=True)
    assert texts(again) == [f"Agent {agent.display_id} has no active credential."]


@pytest.mark.parametrize("role_client", [Role.VIEWER, Role.OPERATOR], indirect=True)
def test_only_admins_revoke(role_client, agent):
    assert role_client.post(action_url("credential_revoke", agent)).status_code == 403
    assert active_credentials(agent).count() == 1


def test_revoke_is_post_only(admin_client_, agent):
    assert admin_client_.get(action_url("credential_revoke", agent)).status_code == 405
    assert active_credentials(agent).count() == 1


# --- Debug logging ------------------------------------------------------------------------


def test_admin_switches_debug_logging(admin_client_, enrolled, agent):
    response = admin_client_.post(action_url("debug_logging", agent), {"enabled": "1"}, follow=True)
    agent.refresh_from_db()
    assert agent.debug_logging is True
    assert "Debug logging is on" in texts(response)[0]
    assert 'data-testid="debug-off"' in response.content.decode()
    answer = post(client_for(enrolled.text), "heartbeat/", {"version": "1", "hostname": "h"})
    assert answer.json()["debug_logging"] is True
    admin_client_.post(action_url("debug_logging", agent), {"enabled": "0"})
    agent.refresh_from_db()
    assert agent.debug_logging is False


@pytest.mark.parametrize("value", ["", "yes", "2"])
def test_bad_debug_value_changes_nothing(admin_client_, agent, value):
    response = admin_client_.post(
        action_url("debug_logging", agent), {"enabled": value}, follow=True
    )
    assert texts(response) == ["Choose enabled=1 (debug logging on) or enabled=0 (off)."]
    agent.refresh_from_db()
    assert agent.debug_logging is False


def test_operator_cannot_switch_debug_logging(operator_client, agent):
    assert (
        operator_client.post(action_url("debug_logging", agent), {"enabled": "1"}).status_code
        == 403
    )
    agent.refresh_from_db()
    assert agent.debug_logging is False


# --- Delete -------------------------------------------------------------------------------


def test_admin_deletes_an_idle_agent_and_its_machines_stay(admin_client_, customer, agent):
    machine = MachineFactory(customer=customer, agent=agent, status=MachineStatus.IN_SYNC)
    confirm = admin_client_.get(action_url("delete", agent))
    assert confirm.status_code == 200
    assert "Its 1 machine and their snapshots stay" in confirm.content.decode()
    response = admin_client_.post(action_url("delete", agent), follow=True)
    assert response.redirect_chain[-1][0] == list_url()
    assert "was deleted" in texts(response)[0]
    assert not Agent.objects.for_customer(customer).filter(pk=agent.pk).exists()
    machine = Machine.objects.for_customer(customer).get(pk=machine.pk)
    assert (machine.agent_id, machine.status) == (None, MachineStatus.IN_SYNC)


def test_delete_is_refused_while_a_job_is_active(admin_client_, customer, agent):
    machine = MachineFactory(customer=customer, agent=agent, status=MachineStatus.PROTECTED)
    job = job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    job_take_next(customer, agent)
    confirm = admin_client_.get(action_url("delete", agent)).content.decode()
    assert 'data-testid="agent-busy"' in confirm
    response = admin_client_.post(action_url("delete", agent), follow=True)
    assert texts(response) == [
        f"Agent {agent.display_id} is running job {job.pk}; cancel the job first."
    ]
    assert Agent.objects.for_customer(customer).filter(pk=agent.pk).exists()


@pytest.mark.parametrize("role_client", [Role.VIEWER, Role.OPERATOR], indirect=True)
def test_only_admins_delete(role_client, customer, agent):
    assert role_client.get(action_url("delete", agent)).status_code == 403
    assert role_client.post(action_url("delete", agent)).status_code == 403
    assert Agent.objects.for_customer(customer).filter(pk=agent.pk).exists()


def test_foreign_agent_is_404_for_every_action(stranger_client, customer, agent):
    for url in (
        detail_url(agent),
        action_url("delete", agent),
        detail_url(agent, slug="globex"),
    ):
        assert stranger_client.get(url).status_code == 404, url
    for name in ("credential_revoke", "debug_logging", "delete"):
        for slug in ("acme", "globex"):
            url = action_url(name, agent, slug=slug)
            assert stranger_client.post(url, {"enabled": "1"}).status_code == 404, url
    agent.refresh_from_db()
    assert agent.debug_logging is False
    assert active_credentials(agent).count() == 1
