"""Models of the clouds app, one module per concern: ``clouds`` (registered platforms),
``agents`` (agents, enrollment tokens, credentials, events), ``downloads`` (download links
and their log), ``wizard`` (Register new platform runs). Import them from here."""

from .agents import (
    Agent,
    AgentCredential,
    AgentEvent,
    AgentStatus,
    EnrollmentToken,
    EventLevel,
    IssuedSecret,
)
from .clouds import CLOUD_PLATFORMS, Cloud, DiscoveryLevel, PowerAction
from .downloads import DownloadEvent, DownloadLink, DriverType, LinuxDistro
from .wizard import WizardDraft

__all__ = [
    "CLOUD_PLATFORMS",
    "Agent",
    "AgentCredential",
    "AgentEvent",
    "AgentStatus",
    "Cloud",
    "DiscoveryLevel",
    "DownloadEvent",
    "DownloadLink",
    "DriverType",
    "EnrollmentToken",
    "EventLevel",
    "IssuedSecret",
    "LinuxDistro",
    "PowerAction",
    "WizardDraft",
]
