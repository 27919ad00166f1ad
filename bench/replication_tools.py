"""restic and borg as bench/replication.py's yardsticks: the same image at the same path, into
local repositories in the bench's temporary area, with fresh caches for every run.

Debian packages: ``apt-get install -y restic borgbackup`` (the issue's figures are restic 0.14
and borg 1.2.4). A tool that is not installed is reported and left out; the bench goes on.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

INSTALL_HINT = "apt-get install -y restic borgbackup"


def dir_bytes(path: Path) -> int:
    """Bytes of all files under ``path``: what a remote repository would have received."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def find_restored(root: Path, name: str) -> Path:
    """Both tools restore the absolute path below their target folder."""
    found = [p for p in root.rglob(name) if p.is_file()]
    if len(found) != 1:
        raise RuntimeError(f"expected one restored {name} under {root}, found {found}")
    return found[0]


class Tool:
    """One backup tool with its repository, cache and environment under ``root``."""

    name = ""
    binary = ""
    VERSION = ("--version",)

    def __init__(self, root: Path):
        self.root = root
        self.repo = root / "repo"
        root.mkdir(parents=True)
        self.env = {**os.environ, **self.environment()}
        self.snapshots: list[str] = []

    @classmethod
    def version(cls) -> str | None:
        """The tool's version line, or None when it is not installed."""
        if not shutil.which(cls.binary):
            return None
        out = subprocess.run([cls.binary, *cls.VERSION], capture_output=True, text=True)
        words = out.stdout.split()
        return " ".join(words[:2]) if words else cls.binary

    def environment(self) -> dict[str, str]:
        raise NotImplementedError

    def run(self, *argv: str, cwd: Path | None = None) -> float:
        """Run the tool; returns wall seconds. A failure raises with the tool's own words."""
        started = time.perf_counter()
        done = subprocess.run(
            [self.binary, *argv], env=self.env, cwd=cwd, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if done.returncode:
            raise RuntimeError(
                f"{self.binary} {' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}"
            )
        return seconds

    def init(self) -> None:
        raise NotImplementedError

    def backup(self, path: Path) -> float:
        raise NotImplementedError

    def restore(self, target: Path) -> float:
        """Restore the latest backup below ``target``; returns seconds."""
        raise NotImplementedError

    def repo_bytes(self) -> int:
        return dir_bytes(self.repo)


class Restic(Tool):
    name = binary = "restic"
    VERSION = ("version",)

    def environment(self):
        password = self.root / "password"
        password.write_text("bench-password\n")
        return {
            "RESTIC_REPOSITORY": str(self.repo),
            "RESTIC_PASSWORD_FILE": str(password),
            "RESTIC_CACHE_DIR": str(self.root / "cache"),
        }

    def init(self):
        self.run("init", "--quiet")

    def backup(self, path):
        return self.run("backup", "--quiet", str(path))

    def restore(self, target):
        return self.run("restore", "latest", "--quiet", "--target", str(target))


class Borg(Tool):
    name, binary = "borg", "borg"
    COMPRESSION = "zstd,1"

    def environment(self):
        return {
            "BORG_REPO": str(self.repo),
            "BORG_BASE_DIR": str(self.root / "home"),  # config, cache, security, keys
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        }

    def init(self):
        self.run("init", "-e", "none")

    def backup(self, path):
        name = f"b{len(self.snapshots)}"
        seconds = self.run("create", "-C", self.COMPRESSION, f"::{name}", str(path))
        self.snapshots.append(name)
        return seconds

    def restore(self, target):
        target.mkdir(parents=True, exist_ok=True)
        return self.run("extract", f"::{self.snapshots[-1]}", cwd=target)


TOOLS = (Restic, Borg)
