"""Factories of the clouds tests: enrollment tokens, enrolled agents and their API clients."""

import pytest
from rest_framework.test import APIClient

from clouds.services import enrollment_token_create
from protection.models import MachineStatus
from tenants.models import Role
from tests.api_support import error_of  # noqa: F401  (re-exported)
from tests.factories import DiskFactory, MachineFactory, MembershipFactory, enroll_agent

API = "/api/v1/agent/"


def make_token(customer, platform="linux", **kwargs):
    """A new enrollment token (``.token`` the row, ``.text`` the secret)."""
    return enrollment_token_create(customer, platform=platform, **kwargs)


def enroll(customer, platform="linux", hostname="host-1", **kwargs):
    """An enrolled agent (``.agent``, ``.credential``, ``.text``)."""
    return enroll_agent(customer, platform=platform, hostname=hostname, **kwargs)


def client_for(credential_text: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential_text}")
    return client


def post(client, path: str, body=None):
    return client.post(API + path, body if body is not None else {}, format="json")


def protected_machine(agent, **kwargs):
    """A protected machine of ``agent`` with two disks."""
    machine = MachineFactory(
        customer=agent.customer,
        platform=agent.platform,
        status=MachineStatus.PROTECTED,
        agent=agent,
        **kwargs,
    )
    DiskFactory(machine=machine, customer=agent.customer, key="sda", size_bytes=1 << 20)
    DiskFactory(machine=machine, customer=agent.customer, key="sdb", size_bytes=2 << 20)
    return machine


@pytest.fixture
def enrolled(customer, group):
    return enroll(customer, group=group)


@pytest.fixture
def agent(enrolled):
    return enrolled.agent


@pytest.fixture
def api(enrolled):
    return client_for(enrolled.text)


@pytest.fixture
def other_enrolled(other_customer):
    return enroll(other_customer, hostname="globex-host")


@pytest.fixture
def other_api(other_enrolled):
    return client_for(other_enrolled.text)


@pytest.fixture
def anon():
    return APIClient()


# --- Customer API clients (session login, one role each) ----------------------------------


def client_of(customer, role) -> APIClient:
    """An API client logged in as a new member of ``customer`` with ``role``."""
    client = APIClient()
    client.force_login(MembershipFactory(customer=customer, role=role).user)
    return client


@pytest.fixture
def member(request, customer) -> APIClient:
    """Parametrize with a role: ``@pytest.mark.parametrize("member", [...], indirect=True)``."""
    return client_of(customer, request.param)


@pytest.fixture
def viewer(customer):
    return client_of(customer, Role.VIEWER)


@pytest.fixture
def operator(customer):
    return client_of(customer, Role.OPERATOR)


@pytest.fixture
def admin(customer):
    return client_of(customer, Role.ADMIN)
