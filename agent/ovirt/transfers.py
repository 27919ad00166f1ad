"""Image transfers (engine side) and the imageio HTTP API (data side), spoken directly.

A download transfer of one disk snapshot volume, ``format=raw`` (the NBD backend: guest data
and extents), ``shallow`` for the volume's own layer only. The engine answers ``initializing``
until the host has put the ticket up, then ``transferring`` with a ``transfer_url`` on the
host's ovirt-imageio daemon (``proxy_url`` on the engine's, when the host cannot be reached).
Every transfer is finalized when its disk is done, cancelled after a failure: an open one
holds the volume and its ticket. Bounded waits, clear errors for ``finished_failure`` and
``paused_system`` (cancelled first, as oVirt's own helper does).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import ovirtsdk4
import ovirtsdk4.types as types

from ..errors import AgentError
from .session import OVirtError

log = logging.getLogger("agent.ovirt")

Phase = types.ImageTransferPhase


@dataclass
class Transfer:
    id: str
    service: object
    url: str  # the transfer URL of the ticket
    shallow: bool
    volume: str

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


def _poll(get, until, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    delay = 0.01  # doubling to 1 s: a quick phase change costs no fixed wait
    while True:
        current = get()
        if until(current):
            return current
        if time.monotonic() >= deadline:
            raise OVirtError(f"{what} did not finish within {int(timeout)} s")
        time.sleep(delay)
        delay = min(1.0, delay * 2)


def start(system, volume: str, *, shallow: bool, what: str, timeout: float = 300) -> Transfer:
    service_root = system.image_transfers_service()
    added = service_root.add(
        types.ImageTransfer(
            direction=types.ImageTransferDirection.DOWNLOAD,
            format=types.DiskFormat.RAW,
            shallow=shallow,
            inactivity_timeout=300,
            snapshot=types.DiskSnapshot(id=volume),
        )
    )
    service = service_root.image_transfer_service(added.id)
    current = _poll(
        service.get,
        lambda t: t.phase != Phase.INITIALIZING,
        f"the image transfer of {what}",
        timeout,
    )
    if current.phase != Phase.TRANSFERRING:
        cancel(service)  # whatever it holds goes
        if current.phase == Phase.PAUSED_SYSTEM:
            raise OVirtError(f"the image transfer of {what} was paused by the system (cancelled)")
        raise OVirtError(f"the image transfer of {what} ended {current.phase}")
    url = current.transfer_url or current.proxy_url
    if not url:
        raise OVirtError(f"the image transfer of {what} has no transfer URL")
    log.debug("transfer %s of %s (%s): %s", added.id, what, "shallow" if shallow else "chain", url)
    return Transfer(added.id, service, url, shallow, volume)


def finalize(transfer: Transfer, what: str, timeout: float = 300) -> None:
    transfer.service.finalize()
    try:
        current = _poll(
            transfer.service.get,
            lambda t: t.phase in (Phase.FINISHED_SUCCESS, Phase.FINISHED_FAILURE),
            f"finalizing the image transfer of {what}",
            timeout,
        )
    except ovirtsdk4.NotFoundError:
        return  # engines before 4.4.7 forget a finished transfer at once
    if current.phase == Phase.FINISHED_FAILURE:
        raise OVirtError(f"the image transfer of {what} finished with a failure")


def cancel(service) -> None:
    try:
        service.cancel()
    except ovirtsdk4.Error as exc:
        log.debug("cancelling a transfer: %s", exc)


def extents(client, transfer: Transfer, what: str) -> list[dict]:
    """``/extents`` of the transfer's ticket (``context=zero``), checked to cover the image."""
    try:
        response = client.request("GET", transfer.path + "/extents", check=False)
    except AgentError as exc:
        raise OVirtError(f"ovirt-imageio cannot be reached for {what}: {exc}") from None
    if response.status != 200:
        raise OVirtError(
            f"ovirt-imageio answered HTTP {response.status} for the extents of {what}: "
            f"{(response.body or b'')[:200].decode(errors='replace').strip()}"
        )
    try:
        found = json.loads(response.body or b"[]")
        position = 0
        for extent in found:
            if int(extent["start"]) != position:
                raise ValueError("not contiguous")
            position += int(extent["length"])
    except (ValueError, KeyError, TypeError) as exc:
        raise OVirtError(f"ovirt-imageio sent malformed extents for {what}: {exc}") from None
    return found
