"""Errors the agent reports, each with the process exit code it maps to.

The exit codes are part of the CLI contract (README.md): scripts and the daemon's supervisor
tell "fix your input" from "the server refused us" from "the disk is broken" without parsing
messages.
"""

EXIT_OK = 0
EXIT_FAILED = 1  # the job failed (server refused something, cancelled, internal error)
EXIT_USAGE = 2  # bad command line, config or changed-areas file
EXIT_AUTH = 3  # token / credential rejected, or the server's certificate is not the pinned one
EXIT_UNREACHABLE = 4  # the server cannot be reached
EXIT_DISK = 5  # a disk cannot be opened or read


class AgentError(Exception):
    """An error with a message meant for the user (no traceback needed)."""

    exit_code = EXIT_FAILED


class UsageError(AgentError):
    exit_code = EXIT_USAGE


class AuthError(AgentError):
    exit_code = EXIT_AUTH


class TrustError(AuthError):
    """The server's TLS certificate is not the one pinned in the config."""


class UnreachableError(AgentError):
    exit_code = EXIT_UNREACHABLE


class DiskError(AgentError):
    exit_code = EXIT_DISK


class Cancelled(AgentError):
    """The job was cancelled in the portal, or the agent was told to stop."""


class ServerError(AgentError):
    """The server answered with an error status; ``code`` is ``details.code`` when given."""

    def __init__(self, status: int, message: str, details: dict | None = None, where: str = ""):
        self.status = status
        self.where = where
        self.server_message = message
        self.details = details or {}
        self.code = self.details.get("code") if isinstance(self.details, dict) else None
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}server answered {status}: {message}")
