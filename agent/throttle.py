"""A token bucket shared by every upload thread: the job's bandwidth limit.

Implemented as a reservation clock: each ``take(n)`` books ``n / rate`` seconds on a shared
timeline (which never lags the present by more than the burst allowance) and sleeps until
its booking ends. Over any
period longer than the burst the average stays at or below ``rate``, however many threads
send, and a request larger than the bucket is simply paid for over time (no deadlock).
Upload bodies are fed through :meth:`Throttle.stream` in small pieces, so the limit shapes
the traffic itself rather than the gaps between requests, and one body at a time: under a
limit, concurrent uploads would only finish together (late) instead of one after another —
each finished batch is progress that a crash does not lose. The next body starts as soon as
the previous one is on the wire, while the server still processes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from .errors import Cancelled

PIECE = 64 * 1024


def mbps_to_bytes(mbps: float | None) -> float | None:
    """Mbit/s (10^6 bits) to bytes per second; None or 0 means unlimited."""
    if not mbps:
        return None
    return mbps * 1_000_000 / 8


class Throttle:
    def __init__(
        self,
        rate: float | None,
        burst_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ):
        self.rate = rate
        self.burst = burst_seconds
        self.clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._booked = 0.0  # the time until which the bandwidth is taken
        self._wire = threading.Lock()  # one throttled body on the wire at a time
        self.stop: threading.Event | None = None

    @property
    def limited(self) -> bool:
        return bool(self.rate)

    def take(self, n: int) -> float:
        """Wait until ``n`` more bytes may be sent; returns the seconds waited."""
        if not self.rate or n <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            self._booked = max(self._booked, now - self.burst) + n / self.rate
            wait = self._booked - now
        if wait <= 0:
            return 0.0
        if self._sleep is not None:
            self._sleep(wait)
        elif self.stop is not None:
            if self.stop.wait(wait):
                raise Cancelled("stopped")
        else:
            time.sleep(wait)
        return wait

    def stream(self, data) -> Callable[[], Iterator[memoryview]]:
        """A body factory for :meth:`Client.request`: ``data`` (bytes, or a list of bytes
        sent one after the other) in throttled pieces."""
        buffers = [data] if isinstance(data, bytes | bytearray | memoryview) else list(data)

        def pieces() -> Iterator[memoryview]:
            while not self._wire.acquire(timeout=0.5):
                if self.stop is not None and self.stop.is_set():
                    raise Cancelled("stopped")
            try:
                for buffer in buffers:
                    view = memoryview(buffer)
                    for start in range(0, len(view), PIECE):
                        piece = view[start : start + PIECE]
                        self.take(len(piece))
                        yield piece
            finally:
                self._wire.release()

        return pieces
