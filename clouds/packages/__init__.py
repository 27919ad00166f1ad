"""Agent packages: real installable builds of the pure-Python agent in ``agent/``.

Django-free, so the download service calls it (and caches the result per link) and unit
tests exercise it against the real tools: ``dpkg-deb`` (.deb), ``rpmbuild`` (.rpm, Debian's
``rpm`` package), ``wixl`` (the MSI in ``hwragent.zip``) and Python's tarfile (the
VMware / oVirt appliance archive). Each build runs in a temporary directory, never in the
source tree, and is timed (logged at INFO).

    spec = PackageSpec("linux", distro="debian", driver="dkms")
    path = build_package(spec, config, dest)   # dest / package_filename(spec)
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from .spec import PackageSpec, package_content_type, package_filename
from .staging import PackageBuildError, check_config

log = logging.getLogger(__name__)

__all__ = [
    "PackageBuildError",
    "PackageSpec",
    "build_package",
    "package_content_type",
    "package_filename",
]


def build_package(
    spec: PackageSpec, config: dict, dest: Path, *, windows_service_host: Path | None = None
) -> Path:
    """Build the package for ``spec`` carrying the package ``config`` (agent/PROTOCOL.md,
    "Agent config"); writes ``dest/<package_filename(spec)>`` and returns it.

    ``windows_service_host``: a Windows service wrapper executable (WinSW for .NET 4) to
    ship as ``hwragent-service.exe``; with it the MSI installs and starts the service
    itself (see ``windows.py``). ``ValueError`` for a config the agent could not enroll
    with; ``PackageBuildError`` when a tool is missing or fails.
    """
    from . import appliance, linux, windows  # each pulls its templates only when used

    check_config(config, spec.platform)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / package_filename(spec)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"acura-{spec.name}-"))
    try:
        partial = work / f"out-{target.name}"
        if spec.platform == "linux" and spec.distro == "debian":
            linux.build_deb(spec, config, work, partial)
        elif spec.platform == "linux":
            linux.build_rpm(spec, config, work, partial)
        elif spec.platform == "windows":
            windows.build_zip(config, work, partial, service_host=windows_service_host)
        else:
            appliance.build_archive(spec, config, work, partial)
        shutil.move(partial, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info(
        "built %s (%s) in %.3f s, %d bytes",
        target.name,
        ", ".join(str(v) for v in (spec.platform, spec.distro, spec.driver) if v),
        time.monotonic() - started,
        target.stat().st_size,
    )
    return target
