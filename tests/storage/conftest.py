"""Fixtures of the storage tests: agents (API keys) of both customers."""

import pytest

from storage.auth import api_key_create
from tests.storage_support import (  # noqa: F401  (re-exported for the tests' imports)
    CHUNK,
    Agent,
    batch,
    digest_of,
    make_disk,
    read_stream,
    split,
)


@pytest.fixture
def agent(customer):
    _key, token = api_key_create(customer, "test agent")
    return Agent(token)


@pytest.fixture
def other_agent(other_customer):
    _key, token = api_key_create(other_customer, "other agent")
    return Agent(token)
