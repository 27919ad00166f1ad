"""Index cost of long retention: daily snapshots of a large disk that changes 1 % a day.

Usage: .venv/bin/python bench/index_cost.py [--disk-gib 1024] [--chunk-kib 1024] [--days 365]
Builds the real index files (storage.store.index) for each day — full, or a delta of the
previous day's within the chain-depth limit — and prints their total size next to what one
full index per snapshot (Proxmox Backup Server's fixed index) would cost.
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.store.index import Index, encode_index_file, plan_index_file


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--disk-gib", type=int, default=1024)
    parser.add_argument("--chunk-kib", type=int, default=1024)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--change", type=float, default=0.01)
    args = parser.parse_args()
    chunk = args.chunk_kib * 1024
    disk = args.disk_gib * 2**30
    entries = disk // chunk
    rnd = random.Random(1)
    digests = bytearray(os.urandom(entries * 32))
    index = Index(chunk, disk, bytes(digests))
    depth, total, full_count, started = 0, 0, 0, time.perf_counter()
    base = None
    for _day in range(args.days):
        planned, depth = plan_index_file(index, base, depth)
        total += len(encode_index_file(planned))
        full_count += planned.is_full
        base = index
        # 1 % of the disk changes, in runs of 256 KiB-4 MiB like a real filesystem.
        changed = 0
        while changed < args.change * entries:
            start = rnd.randrange(entries)
            run = max(1, rnd.randint(256 * 1024, 4 * 2**20) // chunk)
            for i in range(start, min(entries, start + run)):
                digests[i * 32 : (i + 1) * 32] = os.urandom(32)
            changed += run
        index = Index(chunk, disk, bytes(digests))
    full_size = entries * 32
    elapsed = time.perf_counter() - started
    print(
        f"disk {args.disk_gib} GiB, chunks {args.chunk_kib} KiB, {entries} entries, "
        f"{args.days} daily snapshots, {args.change:.0%} change per day"
    )
    print(
        f"{'one full index per snapshot':36} {full_size * args.days / 2**30:8.2f} GiB "
        f"({full_size / 2**20:.1f} MiB each)"
    )
    print(
        f"{'full + delta chains (ours)':36} {total / 2**30:8.2f} GiB "
        f"({total / args.days / 2**20:.2f} MiB per snapshot, {full_count} full files)"
    )
    print(f"{'ratio':36} {full_size * args.days / total:8.1f} x smaller")
    print(
        f"{'data changed in the same period':36} {disk * args.change * args.days / 2**30:8.1f} GiB"
    )
    print(f"computed in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
