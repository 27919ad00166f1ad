"""*Replicate now* for a selection: the machine list's and a group page's action, and
``POST /api/v1/c/<slug>/machines/replicate-now/``. Protected machines with an agent get a
manual job; the others are skipped and counted by reason; a foreign id changes nothing; a
viewer cannot; another customer's group is a 404."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from clouds.models import AgentStatus
from protection.models import JobTrigger, MachineStatus, ReplicationJob
from protection.services.jobs import job_queue
from tests.factories import MachineFactory, MachineGroupFactory
from tests.job_support import make_agent

pytestmark = pytest.mark.django_db

BASE = "/api/v1/c/acme"


@pytest.fixture
def selection(customer, group):
    """Four machines of one group: two that can replicate, one already replicating, one not
    protected, and one protected without an agent."""
    agent = make_agent(customer, status=AgentStatus.ONLINE)

    def machine(name, status=MachineStatus.PROTECTED, with_agent=True):
        return MachineFactory(customer=customer, group=group, name=name, status=status,
                              agent=agent if with_agent else None)  # fmt: skip

    rows = {
        "a": machine("app-01"),
        "b": machine("app-02", MachineStatus.IN_SYNC),
        "busy": machine("db-01"),
        "off": machine("old-01", MachineStatus.UNPROTECTED),
        "lonely": machine("new-01", with_agent=False),
    }
    job_queue(customer, rows["busy"], trigger=JobTrigger.SCHEDULE)
    return rows


def manual_jobs(customer):
    return sorted(
        ReplicationJob.objects.for_customer(customer)
        .filter(trigger=JobTrigger.MANUAL)
        .values_list("machine__name", flat=True)
    )


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


EXPECTED = (
    "Queued replication of 2 machines. Skipped 1 already replicating, 1 no agent reports it, "
    "1 not protected."
)


def test_the_machine_lists_action_queues_what_can_replicate(operator_client, customer, selection):
    response = operator_client.post(
        reverse("protection:machine_bulk", args=["acme"]),
        {"action": "replicate_now", "machines": [m.pk for m in selection.values()]},
        follow=True,
    )
    assert messages_of(response) == [EXPECTED]
    assert manual_jobs(customer) == ["app-01", "app-02"]
    page = operator_client.get(reverse("protection:machine_list", args=["acme"])).content
    assert b'value="replicate_now"' in page


def test_a_group_pages_replicate_now_covers_the_whole_group(
    operator_client, customer, group, selection
):
    url = reverse("protection:group_replicate", args=["acme", group.pk])
    page = operator_client.get(reverse("protection:group_detail", args=["acme", group.pk]))
    assert url.encode() in page.content
    response = operator_client.post(url, follow=True)
    assert messages_of(response) == [f"{group.name}: {EXPECTED}"]
    assert manual_jobs(customer) == ["app-01", "app-02"]


def test_a_viewer_cannot_and_another_customers_group_is_a_404(
    viewer_client, operator_client, customer, other_customer, group, selection
):
    url = reverse("protection:group_replicate", args=["acme", group.pk])
    assert viewer_client.post(url).status_code == 403
    bulk = reverse("protection:machine_bulk", args=["acme"])
    viewer_client.post(bulk, {"action": "replicate_now", "machines": [selection["a"].pk]})
    foreign = MachineGroupFactory(customer=other_customer, name="Theirs")
    MachineFactory(customer=other_customer, group=foreign, status=MachineStatus.PROTECTED)
    assert (
        operator_client.post(
            reverse("protection:group_replicate", args=["acme", foreign.pk])
        ).status_code
        == 404
    )
    assert manual_jobs(customer) == []


def test_a_foreign_machine_in_the_selection_queues_nothing(
    operator_client, customer, other_customer, selection
):
    theirs = MachineFactory(customer=other_customer, status=MachineStatus.PROTECTED)
    operator_client.post(
        reverse("protection:machine_bulk", args=["acme"]),
        {"action": "replicate_now", "machines": [selection["a"].pk, theirs.pk]},
    )
    assert manual_jobs(customer) == []


def test_the_api_answers_what_it_queued_and_why_others_were_skipped(
    operator_user, customer, selection
):
    api = APIClient()
    api.force_login(operator_user)
    ids = [m.pk for m in selection.values()]
    response = api.post(f"{BASE}/machines/replicate-now/", {"machines": ids}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["queued"] == 2 and len(body["jobs"]) == 2 and body["skipped"] == 3
    assert body["skipped_reasons"] == {"conflict": 1, "no_agent": 1, "not_protected": 1}
    assert body["message"] == EXPECTED
    assert manual_jobs(customer) == ["app-01", "app-02"]
    again = api.post(f"{BASE}/machines/replicate-now/", {"machines": ids}, format="json")
    assert again.json()["queued"] == 0 and again.json()["skipped_reasons"]["conflict"] == 3


def test_the_api_refuses_a_foreign_id_and_queues_nothing(
    operator_user, customer, other_customer, selection
):
    api = APIClient()
    api.force_login(operator_user)
    theirs = MachineFactory(customer=other_customer, status=MachineStatus.PROTECTED)
    body = {"machines": [selection["a"].pk, theirs.pk]}
    response = api.post(f"{BASE}/machines/replicate-now/", body, format="json")
    assert response.status_code in (400, 404)
    assert manual_jobs(customer) == []
