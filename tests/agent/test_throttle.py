"""The bandwidth limit: a shared token bucket that holds the average rate."""

import threading
import time

from agent.throttle import Throttle, mbps_to_bytes


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_unlimited_never_waits():
    throttle = Throttle(None)
    assert not throttle.limited
    assert throttle.take(10**12) == 0
    assert mbps_to_bytes(0) is None and mbps_to_bytes(None) is None
    assert mbps_to_bytes(8) == 1_000_000


def test_a_burst_passes_then_the_rate_holds():
    clock = FakeClock()
    throttle = Throttle(1000.0, burst_seconds=0.5, clock=clock, sleep=clock.sleep)
    start = clock.now
    assert throttle.take(500) == 0  # the burst allowance
    for _ in range(10):
        throttle.take(1000)
    # 10,500 bytes at 1000 B/s with a 500-byte burst: 10 s.
    assert abs((clock.now - start) - 10.0) < 1e-9


def test_a_request_bigger_than_the_bucket_is_paid_over_time():
    clock = FakeClock()
    throttle = Throttle(1000.0, burst_seconds=0.0, clock=clock, sleep=clock.sleep)
    waited = throttle.take(5000)
    assert abs(waited - 5.0) < 1e-9


def test_idle_time_does_not_bank_more_than_the_burst():
    clock = FakeClock()
    throttle = Throttle(1000.0, burst_seconds=0.5, clock=clock, sleep=clock.sleep)
    clock.now += 3600  # an hour idle
    start = clock.now
    throttle.take(2500)
    assert abs((clock.now - start) - 2.0) < 1e-9


def test_threads_share_the_limit_in_real_time():
    rate = 400_000.0  # bytes/s
    throttle = Throttle(rate, burst_seconds=0.05)
    sent = []

    def sender():
        for piece in throttle.stream(bytes(100_000))():
            sent.append(len(piece))

    started = time.monotonic()
    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert sum(sent) == 400_000
    # 400 kB at 400 kB/s is 1 s, less the 20 kB burst: at least 0.9 s, whatever the threads.
    assert elapsed >= 0.9, elapsed
    assert elapsed < 3.0, elapsed
