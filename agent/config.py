"""The agent's JSON config file (PROTOCOL.md, "Agent config").

Written by ``enroll`` with mode 0600 (it holds the credential), atomically (a crash while
saving never leaves half a file). Before enrollment a *package config* holds the server,
the enrollment token and the pinned fingerprint; ``enroll`` replaces the token with the
credential. Every value is validated on load so a typo is a clear error (exit 2), not a
traceback in the middle of a replication.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError

DEFAULTS = {
    "server_fingerprint": None,
    "heartbeat_seconds": 15,
    "threads": 0,  # 0 = os.cpu_count()
    "log_file": None,
    "state_dir": None,  # None = see Config.state_dir
    "retries": 5,  # HTTP attempts after the first on connection errors and 502/503/504
    "poll_seconds": 5,  # daemon: how often to ask for a job
    "inventory_minutes": 5,  # daemon: how often to report the inventory
    "bandwidth_limit_mbps": None,  # a local cap on top of the job's (None = the job's only)
}

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_INT_KEYS = ("heartbeat_seconds", "threads", "retries", "poll_seconds", "inventory_minutes")


def normalize_fingerprint(value) -> str | None:
    """A SHA-256 certificate fingerprint as 64 lowercase hex digits (colons allowed)."""
    if value in (None, ""):
        return None
    text = str(value).replace(":", "").strip().lower()
    if not _HEX64.match(text):
        raise UsageError(
            f"server_fingerprint must be the SHA-256 of the server certificate (64 hex digits, "
            f"colons allowed), not {value!r}"
        )
    return text


def normalize_disks(value) -> dict[str, str]:
    """Config ``disks`` as {key: path}: accepts the PROTOCOL.md list of ``{key, path}`` or a
    plain mapping of key to path."""
    if value is None:
        return {}
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for entry in value:
            if not isinstance(entry, dict) or "key" not in entry or "path" not in entry:
                raise UsageError(f'config "disks" entries need "key" and "path": {entry!r}')
            items.append((entry["key"], entry["path"]))
    else:
        raise UsageError('config "disks" must be a list of {"key", "path"} or a mapping')
    disks: dict[str, str] = {}
    for key, path in items:
        if not isinstance(key, str) or not key or not isinstance(path, str) or not path:
            raise UsageError(f'config "disks": key and path must be non-empty text ({key!r})')
        if key in disks:
            raise UsageError(f'config "disks": the key {key!r} appears twice')
        disks[key] = path
    return disks


@dataclass
class Config:
    path: Path
    data: dict = field(default_factory=dict)

    # -- loading and saving --------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike, *, missing_ok: bool = False) -> Config:
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            if missing_ok:
                return cls(path, {})
            raise UsageError(f"config file {path} does not exist (run `enroll` first)") from None
        except OSError as exc:
            raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise UsageError(f"config file {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"config file {path} must hold a JSON object")
        config = cls(path, data)
        config.validate()
        return config

    def validate(self) -> None:
        d = self.data
        server = d.get("server")
        if server is not None and not (
            isinstance(server, str) and server.startswith(("http://", "https://"))
        ):
            raise UsageError(f'config "server" must be an http:// or https:// URL, not {server!r}')
        d["server_fingerprint"] = normalize_fingerprint(d.get("server_fingerprint"))
        for key in _INT_KEYS:
            value = d.get(key, DEFAULTS[key])
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageError(f'config "{key}" must be a whole number >= 0, not {value!r}')
        limit = d.get("bandwidth_limit_mbps")
        if limit is not None and (
            not isinstance(limit, int | float) or isinstance(limit, bool) or limit < 0
        ):
            raise UsageError(f'config "bandwidth_limit_mbps" must be >= 0, not {limit!r}')
        normalize_disks(d.get("disks"))
        machine = d.get("machine")
        if machine is not None and not isinstance(machine, dict):
            raise UsageError('config "machine" must be an object {"external_id", "name"}')

    def save(self) -> None:
        """Write atomically with mode 0600 (the file holds the credential)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".agent-config-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.data, f, indent=2, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # -- values ----------------------------------------------------------------------------

    def get(self, key: str):
        return self.data.get(key, DEFAULTS.get(key))

    @property
    def server(self) -> str:
        return self.data.get("server") or ""

    @property
    def fingerprint(self) -> str | None:
        return self.data.get("server_fingerprint")

    @property
    def credential(self) -> str | None:
        return self.data.get("credential")

    @property
    def disks(self) -> dict[str, str]:
        return normalize_disks(self.data.get("disks"))

    @property
    def threads(self) -> int:
        return self.get("threads") or os.cpu_count() or 2

    @property
    def state_dir(self) -> Path:
        """Where the index cache and the running-job records live. Default: beside a config
        that is not under /etc (tests, user installs), else /var/lib/acura-agent."""
        value = self.data.get("state_dir")
        if value:
            return Path(value)
        parent = self.path.resolve().parent
        if str(parent).startswith("/etc"):
            return Path("/var/lib/acura-agent")
        return parent / f"{self.path.stem}-state"

    def require_enrolled(self) -> None:
        if not self.server or not self.credential:
            raise UsageError(
                f"config file {self.path} has no server credential: run "
                f"`python -m agent enroll --config {self.path}` first"
            )
