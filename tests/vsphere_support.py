"""A real vSphere API peer for tests: the vcsim that ``scripts/build-vcsim`` builds.

``scripts/test`` builds it before the suite runs; a test run without it fails with the command
that builds it (never a silent skip).
"""

import contextlib
import re
import signal
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
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
    disk_mib=None,
    quiesce_fail=(),
    datastore_free_percent=None,
    cbt_page_mib=None,
    snapshot_remove_fail=0,
):
    """Start a simulated vCenter (1 datacenter, a 3-host cluster and a standalone host);
    yields ``(host, port)``. With ``user`` it accepts exactly that login, else any.

    ``deny_privileges``: privilege ids its privilege checks refuse (vcsim grants all
    otherwise). ``tls_cert``/``tls_key``: PEM files to serve instead of vcsim's built-in
    self-signed certificate.

    As a replication peer (``scripts/vcsim/simulator/acura_peer.go``): ``disk_mib`` gives every
    VM disk that capacity and a sparse flat file of that size (default: 1 MiB, empty files);
    ``quiesce_fail``: VM names whose quiesced snapshots fail (``ApplicationQuiesceFault``);
    ``datastore_free_percent``: datastores report that share of their capacity as free;
    ``cbt_page_mib``: disk span one ``QueryChangedDiskAreas`` answer covers (default 16);
    ``snapshot_remove_fail``: the first that many snapshot removals fail (``FileLocked``)."""
    if not VCSIM.exists():
        raise AssertionError(f"{VCSIM} is missing: run scripts/build-vcsim (scripts/test does)")
    argv = [str(VCSIM), "-vm", str(vms)]
    if user:
        argv += ["-user", user, "-password", password]
    if deny_privileges:
        argv += ["-deny-privileges", ",".join(deny_privileges)]
    if tls_cert:
        argv += ["-tls-cert", str(tls_cert), "-tls-key", str(tls_key)]
    if disk_mib is not None:
        argv += ["-disk-mib", str(disk_mib)]
    if quiesce_fail:
        argv += ["-quiesce-fail", ",".join(quiesce_fail)]
    if datastore_free_percent is not None:
        argv += ["-datastore-free-percent", str(datastore_free_percent)]
    if cbt_page_mib is not None:
        argv += ["-cbt-page-mib", str(cbt_page_mib)]
    if snapshot_remove_fail:
        argv += ["-snapshot-remove-fail", str(snapshot_remove_fail)]
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


def _guest_request(method, host, port, endpoint, query, data=None) -> bytes:
    url = f"https://{host}:{port}/acura/{endpoint}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, data=data, method=method)
    context = ssl._create_unverified_context()  # vcsim's test certificate
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        reason = error.read().decode(errors="replace").strip()
        raise AssertionError(f"{endpoint} answered {error.code}: {reason}") from None


def guest_write(host, port, vm_moid: str, disk_key: int, offset: int, data: bytes) -> None:
    """Write ``data`` at byte ``offset`` of a VM's disk as its guest would (into the disk's
    live layer; recorded for change tracking). Raises AssertionError with vcsim's one-line
    reason when it refuses (400: unknown VM or disk, bad offset, a write past the end)."""
    query = {"vm": vm_moid, "disk": disk_key, "offset": offset}
    _guest_request("PUT", host, port, "guest-write", query, bytes(data))


def disk_read(host, port, vm_moid: str, disk_key: int, offset: int, length: int) -> bytes:
    """What the guest of a VM reads now from its disk at ``offset`` (``length`` bytes)."""
    query = {"vm": vm_moid, "disk": disk_key, "offset": offset, "length": length}
    return _guest_request("GET", host, port, "disk-read", query)


def folder_faults(host, port, *, after: int, count: int) -> None:
    """After the next ``after`` GETs of /folder, make ``count`` of them answer 503."""
    _guest_request("PUT", host, port, "folder-faults", {"after": after, "count": count}, b"")
