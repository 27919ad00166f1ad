"""The oVirt tests' data side, real: the ovirt-imageio daemon (PyPI, installed by
``scripts/install-imageio`` into ``.cache/imageio/venv``) serving qcow2 layers that qemu-nbd
exports (Debian's ``qemu-utils``), as an oVirt host does for an image transfer.

``running_imageio(folder)`` starts the daemon (plain HTTP on 127.0.0.1, its control API on a
TCP port, no TLS, no privilege dropping: ``/work/shared/docs/ovirt-api.md`` §9) and yields an
:class:`Imageio`; :class:`NbdExport` is one qemu-nbd export of a qcow2 volume, shallow (the
layer alone: ``/extents`` answers ``hole: true`` where it holds no data) or with its backing
chain (the disk as it was at that volume). A missing tool fails with the command that installs
it, never a skip.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.e2e_support import free_port

ROOT = Path(__file__).resolve().parents[1]
DAEMON = ROOT / ".cache" / "imageio" / "venv" / "bin" / "ovirt-imageio"

CONFIG = """[daemon]
run_dir = {run}
drop_privileges = false
systemd_enable = false

[tls]
enable = false

[remote]
host = 127.0.0.1
port = {remote}

[local]
enable = false

[control]
transport = tcp
port = {control}

[handlers]
keys = stderr

[logger_root]
handlers = stderr
level = WARNING

[handler_stderr]
class = logging.StreamHandler
args = ()
formatter = long
"""


def require_tools() -> None:
    missing = [tool for tool in ("qemu-img", "qemu-nbd", "qemu-io") if not shutil.which(tool)]
    if missing or not DAEMON.exists():
        raise AssertionError(
            f"the oVirt data-side peer is missing ({', '.join(missing) or DAEMON}): run "
            "scripts/install-imageio (scripts/test does)"
        )


def _wait_port(port: int, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on port {port} within {timeout} s")


class Imageio:
    def __init__(self, remote: int, control: int, process: subprocess.Popen):
        self.remote, self.control, self.process = remote, control, process

    def images_url(self, ticket: str) -> str:
        return f"http://127.0.0.1:{self.remote}/images/{ticket}"

    def _control(self, method: str, ticket: str, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control}/tickets/{ticket}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def add_ticket(self, ticket: str, url: str, size: int, *, timeout: int = 300,
                   ops=("read",)) -> None:  # fmt: skip
        """What an oVirt host does when an image transfer starts."""
        body = {"uuid": ticket, "size": size, "url": url, "timeout": timeout, "ops": list(ops),
                "sparse": True, "dirty": False}  # fmt: skip
        self._control("PUT", ticket, body)

    def remove_ticket(self, ticket: str) -> None:
        with contextlib.suppress(OSError):
            self._control("DELETE", ticket)


@contextlib.contextmanager
def running_imageio(folder: Path):
    require_tools()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conf" / "conf.d").mkdir(parents=True, exist_ok=True)
    (folder / "run").mkdir(exist_ok=True)
    remote, control = free_port(), free_port()
    (folder / "conf" / "conf.d" / "test.conf").write_text(
        CONFIG.format(run=folder / "run", remote=remote, control=control)
    )
    log = open(folder / "daemon.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(DAEMON), "-c", str(folder / "conf")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_port(remote, "ovirt-imageio")
        _wait_port(control, "ovirt-imageio's control service")
        yield Imageio(remote, control, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class NbdExport:
    """``qemu-nbd`` serving one qcow2 volume read-only on a unix socket."""

    def __init__(self, volume: Path, socket_path: Path, *, shallow: bool):
        self.socket_path = socket_path
        if shallow:
            spec = {"driver": "qcow2", "backing": None,
                    "file": {"driver": "file", "filename": str(volume)}}  # fmt: skip
            image = "json:" + json.dumps(spec)
        else:
            image = str(volume)
        argv = ["qemu-nbd", "--read-only", "--persistent", "--shared=8", "--cache=none",
                f"--socket={socket_path}", "--allocation-depth"]  # fmt: skip
        if not shallow:
            argv.append("--format=qcow2")
        argv.append(image)
        self.process = subprocess.Popen(argv, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"qemu-nbd failed: {self.process.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise AssertionError("qemu-nbd did not create its socket")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"nbd:unix:{self.socket_path}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
