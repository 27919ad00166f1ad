"""Writes of the clouds app: enrollment, credentials, and what agents report."""

from .agents import (
    MAX_EVENTS,
    HeartbeatAnswer,
    agent_delete,
    agent_events_record,
    agent_heartbeat,
    agent_set_debug_logging,
)
from .enrollment import (
    CREDENTIAL_KIND,
    ENROLLMENT_KIND,
    Enrolled,
    EnrollmentRefused,
    NewEnrollmentToken,
    agent_credential_revoke,
    agent_credential_rotate,
    agent_enroll,
    credential_revoke,
    enrollment_token_create,
    enrollment_token_revoke,
)
from .inventory import MAX_MACHINES, agent_inventory, inventory_clean

__all__ = [
    "CREDENTIAL_KIND",
    "ENROLLMENT_KIND",
    "MAX_EVENTS",
    "MAX_MACHINES",
    "Enrolled",
    "EnrollmentRefused",
    "HeartbeatAnswer",
    "NewEnrollmentToken",
    "agent_credential_revoke",
    "agent_credential_rotate",
    "agent_delete",
    "agent_enroll",
    "agent_events_record",
    "agent_heartbeat",
    "agent_inventory",
    "agent_set_debug_logging",
    "credential_revoke",
    "enrollment_token_create",
    "enrollment_token_revoke",
    "inventory_clean",
]
