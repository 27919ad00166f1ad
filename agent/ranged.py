"""A disk read over HTTP Range requests: a VMware datastore file (``/folder``), an oVirt image
transfer (ovirt-imageio's ``/images/<ticket>``).

:class:`RangeDisk` has the interface the pipeline reads (``key``, ``size``, ``read(offset,
length)``, ``close()``). The pipeline's hash threads call ``read`` at once, each on its own
pooled keep-alive connection of the given :class:`~agent.http.Client`, so reads run in
parallel. A read that fails (a dropped connection, a 5xx) is retried by the client with
backoff; one that still fails, or an answer that is not exactly the range asked for, is a
:class:`~agent.errors.DiskError` naming the disk, the source and the byte. ``renew`` (optional)
is called when the source answers 403 — an image transfer whose ticket expired — and returns
a new path to read from; the read is then tried again there once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import AgentError, DiskError


class RangeDisk:
    is_block = False

    def __init__(self, client, path: str, key: str, size: int, *, source: str,
                 renew: Callable[[], str] | None = None):  # fmt: skip
        self.client, self.url, self.key, self.size = client, path, key, int(size)
        self.path = self.source = source  # what messages call it
        self.renew = renew
        self._renewing = threading.Lock()

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``."""
        if length <= 0:
            return b""
        url = self.url
        status, data = self._get(url, offset, length)
        if status == 403 and self.renew is not None:
            with self._renewing:
                if self.url == url:  # not renewed by another thread meanwhile
                    self.url = self.renew()
            status, data = self._get(self.url, offset, length)
        if status == 200 and offset == 0 and len(data) >= length:
            data = data[:length]  # a server that ignores Range for the whole file
        elif status != 206:
            detail = data[:200].decode(errors="replace").strip()
            tried = " (tried 5 times)" if status in (502, 503, 504) else ""
            raise DiskError(
                f"reading disk {self.key} ({self.source}) at byte {offset}: it answered HTTP "
                f"{status}{': ' + detail if detail else ''}{tried}; the next job reads it again"
            )
        if len(data) != length:
            raise DiskError(
                f"reading disk {self.key} ({self.source}) at byte {offset}: {len(data)} bytes "
                f"came back, {length} were asked for (is it shorter than the disk?)"
            )
        return data

    def _get(self, url: str, offset: int, length: int) -> tuple[int, bytes]:
        span = f"bytes={offset}-{offset + length - 1}"
        try:
            response = self.client.request(
                "GET", url, headers={"Range": span, "Accept": "*/*"}, check=False
            )
        except AgentError as exc:
            raise DiskError(
                f"reading disk {self.key} ({self.source}) at byte {offset} failed: {exc}"
            ) from None
        return response.status, response.body or b""

    def close(self) -> None:
        """The connections belong to the client (closed with it)."""
