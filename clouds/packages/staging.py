"""Shared plumbing of the builders: a staging tree with fixed modes and times, templates,
the external tools, and deterministic tar/zip writers.

Reproducibility: every staged file gets the same mtime (``SOURCE_DATE_EPOCH`` when set, else
a fixed project date) and archives are written in sorted order with root ownership, so the
same spec and config give the same bytes wherever the tool allows it (wixl does not: see
``windows.py``).
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import agent

log = logging.getLogger(__name__)

AGENT_DIR = Path(agent.__file__).resolve().parent
AGENT_VERSION = agent.__version__
TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_EPOCH = 1735689600  # 2025-01-01 00:00:00 UTC: a stable stamp when none is given
_PLACEHOLDER = re.compile(r"@[A-Z][A-Z0-9_]*@")

# Which Debian package brings each tool (the error message tells the operator).
TOOL_PACKAGES = {"dpkg-deb": "dpkg", "rpmbuild": "rpm", "wixl": "wixl"}


class PackageBuildError(Exception):
    """A package could not be built: a tool is missing (the message names the apt-get
    install) or a tool failed (the message ends with its stderr)."""


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_EPOCH


def tool_env() -> dict:
    """The environment of the build tools: fixed time and locale, nothing personal."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
    env.update(SOURCE_DATE_EPOCH=str(source_date_epoch()), LC_ALL="C.UTF-8", TZ="UTC")
    return env


def run_tool(args: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a build tool; ``PackageBuildError`` when it is missing or fails."""
    program = args[0]
    if shutil.which(program) is None:
        package = TOOL_PACKAGES.get(program, program)
        raise PackageBuildError(
            f"{program} is not installed on the server: apt-get install {package}"
        )
    started = time.monotonic()
    try:
        done = subprocess.run(
            args, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        raise PackageBuildError(f"{program} did not finish within 120 s") from None
    log.debug("%s took %.3f s", program, time.monotonic() - started)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise PackageBuildError(f"{program} failed (exit {done.returncode}): {tail}")
    return done


def render(template: str, **values) -> str:
    """A template under ``templates/`` with ``@NAME@`` placeholders filled (``@`` keeps
    shell and batch ``$``/``%`` untouched); a placeholder left over is a bug, not output."""
    text = (TEMPLATES / template).read_text()
    given = {f"@{key.upper()}@": str(value) for key, value in values.items()}
    missing = set(_PLACEHOLDER.findall(text)) - set(given)
    if missing:  # checked before filling: a value may itself contain an @WORD@
        raise RuntimeError(f"template {template}: no value for {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda match: given.get(match.group(), match.group()), text)


def config_json(config: dict) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def check_config(config: dict, platform: str) -> None:
    if not isinstance(config, dict):
        raise ValueError("the package config must be a dict")
    server = config.get("server")
    if not (isinstance(server, str) and server.startswith(("http://", "https://"))):
        raise ValueError(f"the package config needs an http(s) 'server', not {server!r}")
    if not config.get("enrollment_token"):
        raise ValueError("the package config needs the 'enrollment_token' the agent enrolls with")
    if config.get("platform", platform) != platform:
        raise ValueError(
            f"the package config is for platform {config.get('platform')!r}, "
            f"the package for {platform!r}"
        )


class Stage:
    """A tree of files to package, written with explicit modes."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, relative: str, content: str | bytes, mode: int = 0o644) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        path.chmod(mode)
        return path

    def copy_agent(
        self, relative: str, *, crlf: bool = False, subpackages: tuple[str, ...] = ()
    ) -> list[str]:
        """The agent package's sources (``*.py``, its docs and requirements), no caches, plus
        the named subpackages (``vmware``: the appliance's VMware job runner, which host
        agents do not carry); returns the staged paths relative to the root."""
        staged = []
        for folder, target_dir in [
            (AGENT_DIR, relative),
            *((AGENT_DIR / name, f"{relative}/{name}") for name in subpackages),
        ]:
            for source in sorted(folder.iterdir()):
                if not source.is_file() or source.suffix not in (".py", ".md", ".txt"):
                    continue
                data = source.read_bytes()
                if crlf and source.suffix in (".md", ".txt"):
                    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                target = f"{target_dir}/{source.name}"
                self.write(target, data)
                staged.append(target)
        return staged

    def files(self) -> Iterator[Path]:
        return iter(sorted(p for p in self.root.rglob("*") if p.is_file()))

    def settle(self) -> None:
        """Directories 0755 whatever the umask, and every file and directory stamped with the
        build epoch (tar, cpio and cab carry modes and mtimes)."""
        stamp = source_date_epoch()
        for path in [*self.root.rglob("*"), self.root]:
            if path.is_dir():
                path.chmod(0o755)
            os.utime(path, (stamp, stamp), follow_symlinks=False)


def write_tar_gz(target: Path, stage: Stage, top: str) -> None:
    """``stage`` as ``top/...`` in a gzip tar with fixed owner, times and order."""
    stamp = source_date_epoch()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in [stage.root, *sorted(stage.root.rglob("*"))]:
            relative = path.relative_to(stage.root).as_posix()
            name = top if relative == "." else f"{top}/{relative}"
            info = tar.gettarinfo(str(path), arcname=name)
            info.mode = 0o755 if info.isdir() else info.mode & 0o7777
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = stamp
            if info.isfile():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=stamp) as gz,
    ):
        gz.write(buffer.getvalue())


def write_zip(target: Path, members: list[tuple[str, Path]]) -> None:
    """A zip of ``(name, file)`` pairs in that order, with fixed dates."""
    date = time.gmtime(max(source_date_epoch(), 315532800))[:6]  # zip dates start in 1980
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in members:
            info = zipfile.ZipInfo(name, date_time=date)
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
