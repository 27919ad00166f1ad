"""Shared fixtures: two customers, users with each role, logged-in clients."""

import pytest
from django.test import Client
from hypothesis import HealthCheck, settings

from tenants.models import Role

from .factories import (
    PASSWORD,
    CustomerFactory,
    MachineFactory,
    MachineGroupFactory,
    MembershipFactory,
    UserFactory,
)

# Property tests judge correctness, not speed: the suite runs in parallel on shared, noisy
# machines, where Hypothesis's per-example deadline and "too slow" check fail at random.
settings.register_profile(
    "acura", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("acura")


@pytest.fixture
def customer(db):
    return CustomerFactory(name="Acme", slug="acme")


@pytest.fixture
def other_customer(db):
    """A second tenant whose objects must stay invisible to members of ``customer``."""
    return CustomerFactory(name="Globex", slug="globex")


def _member(customer, role):
    return MembershipFactory(customer=customer, role=role, user=UserFactory()).user


@pytest.fixture
def admin_user(customer):
    return _member(customer, Role.ADMIN)


@pytest.fixture
def operator_user(customer):
    return _member(customer, Role.OPERATOR)


@pytest.fixture
def viewer_user(customer):
    return _member(customer, Role.VIEWER)


@pytest.fixture
def stranger_user(other_customer):
    """An admin of the other customer: must get 404 for everything of ``customer``."""
    return _member(other_customer, Role.ADMIN)


def _client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_(admin_user):
    return _client_for(admin_user)


@pytest.fixture
def operator_client(operator_user):
    return _client_for(operator_user)


@pytest.fixture
def viewer_client(viewer_user):
    return _client_for(viewer_user)


@pytest.fixture
def stranger_client(stranger_user):
    return _client_for(stranger_user)


@pytest.fixture
def role_client(request, customer):
    """Parametrize with a role name: ``@pytest.mark.parametrize("role_client", [...],
    indirect=True)``."""
    return _client_for(_member(customer, request.param))


@pytest.fixture
def group(customer):
    return MachineGroupFactory(customer=customer, name="Web servers")


@pytest.fixture
def machine(customer, group):
    return MachineFactory(customer=customer, group=group, name="web-01")


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture(autouse=True)
def isolated_store(settings, tmp_path):
    """Every test gets its own chunk store (and forgets cached backends and keyrings)."""
    from storage.services import context

    settings.STORE_URL = f"file://{tmp_path}/store"
    settings.STORE_FSYNC = False
    settings.STORE_CHUNK_SIZE = 64 * 1024  # small chunks keep tests fast; same protocol
    settings.PACKAGE_CACHE_DIR = tmp_path / "packages"
    context._backend.cache_clear()
    context._keyring.cache_clear()
    yield tmp_path / "store"
    context._backend.cache_clear()
    context._keyring.cache_clear()
