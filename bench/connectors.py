"""How long the wizard's connection check takes as a vCenter grows: pyvmomi against the
vSphere simulator (``scripts/build-vcsim``), check + privileges + discovery of every VM.

Usage: .venv/bin/python bench/connectors.py [--vms 2 100 500] [--repeat 3]
``--vms N`` is vcsim's VMs per host and cluster (the inventory holds 2N VMs). Prints the
best time of each size: discovery is one paged property-collector query for all objects,
so the time grows with the answer's size, not with round trips.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    from clouds.connectors import ConnectorError, tls, vmware
    from tests.vsphere_support import running_vcsim

    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, nargs="+", default=[2, 100, 500])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'vcsim -vm':>10} {'VMs':>6} {'disks':>6} {'best check':>12} {'per VM':>8}")
    for size in args.vms:
        with running_vcsim(vms=size) as (host, port):
            try:
                tls.probe(host, port, timeout=5)
                pin = None
            except ConnectorError as untrusted:
                pin = untrusted.fingerprint
            best = float("inf")
            for _ in range(args.repeat):
                started = time.perf_counter()
                result = vmware.check(
                    f"{host}:{port}", "bench", "bench", cluster_level=True,
                    tls_fingerprint=pin, timeout=60,
                )  # fmt: skip
                best = min(best, time.perf_counter() - started)
            counts = result.inventory.counts
            per_vm = best / max(counts["vms"], 1) * 1000
            print(
                f"{size:>10} {counts['vms']:>6} {counts['disks']:>6} "
                f"{best * 1000:>9.0f} ms {per_vm:>5.2f} ms"
            )


if __name__ == "__main__":
    main()
