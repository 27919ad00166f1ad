"""A real vSphere API peer for tests: the vcsim that ``scripts/build-vcsim`` builds.

``scripts/test`` builds it before the suite runs; a test run without it fails with the command
that builds it (never a silent skip).
"""

import contextlib
import re
import signal
import subprocess
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VCSIM = ROOT / ".cache" / "vcsim" / "vcsim"


@contextlib.contextmanager
def running_vcsim(
    *,
    user: str = "",
    password: str = "",
    vms: int = 2,
    deny_privileges=(),
    tls_cert=None,
    tls_key=None,
):
    """Start a simulated vCenter (1 datacenter, a 3-host cluster and a standalone host);
    yields ``(host, port)``. With ``user`` it accepts exactly that login, else any.

    ``deny_privileges``: privilege ids its privilege checks refuse (vcsim grants all
    otherwise). ``tls_cert``/``tls_key``: PEM files to serve instead of vcsim's built-in
    self-signed certificate."""
    if not VCSIM.exists():
        raise AssertionError(f"{VCSIM} is missing: run scripts/build-vcsim (scripts/test does)")
    argv = [str(VCSIM), "-vm", str(vms)]
    if user:
        argv += ["-user", user, "-password", password]
    if deny_privileges:
        argv += ["-deny-privileges", ",".join(deny_privileges)]
    if tls_cert:
        argv += ["-tls-cert", str(tls_cert), "-tls-key", str(tls_key)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        match = re.match(r"VCSIM_URL=(\S+)", line)
        if not match:
            raise AssertionError(f"vcsim did not start: {line}{process.stdout.read()[:2000]}")
        url = urllib.parse.urlsplit(match.group(1))
        yield url.hostname, url.port
    finally:
        process.send_signal(signal.SIGTERM)  # SIGTERM lets it remove its datastore folders
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
