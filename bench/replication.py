"""Replication end to end: the Acura agent against a real server, beside restic and borg.

Usage: .venv/bin/python bench/replication.py [--size 512M] [--change 0.02] [--repeat 3]
       [--chunk-size 256K] [--only agent,restic,borg] [--no-lib] [--profile] [--keep] [--tmp DIR]

The image and change pattern are bench/store.py's (40 % zeros, 30 % text-like, 30 % random in
runs of 64 KiB-8 MiB; changes are 256 KiB runs of new random data). From the base image B:
A = B + ``--change`` (2 %), then C = A + another 2 %, then D = C + 1 %; the disk the tools
back up is one path whose content becomes B, A, C, D in turn. Per run (fresh repositories,
caches, customer and agent):

- agent: full replication of B; incremental to A without a change list (hash every chunk,
  compare with the base index); incremental to C with ``--changed-areas`` (the exact extents
  written, as CBT reports them); incremental to D (1 %) with the list: the wire-bytes figure;
  restore of the A snapshot, checked bit-exact by SHA-256. Timed as a CLI process
  (``python -m agent ...``: what a user sees, interpreter start included) and, when the agent
  has a library entry point, as an in-process call ("lib").
- restic (``init``, ``backup``, ``restore latest``) and borg (``init -e none``, ``create -C
  zstd,1``, ``extract``): backup of B, then of A at the same path, restore of A.

Best of ``--repeat`` runs. Ratios are against the faster of restic and borg in the same run,
next to the issue's targets (full >= 1.5x throughput, incremental without a list >= 3x, with
a list >= 20x, wire bytes of the 1 % change <= 1.5x the zstd-1 size of the changed data).
Wire bytes are the agent's ``bytes_sent``, cross-checked with what the server's upload
sessions received; restic and borg show how much their repository grew. Nothing is asserted.
"""

import argparse
import contextlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zstandard  # noqa: E402

from bench.replication_agent import AgentRunner, agent_library, profile_run  # noqa: E402
from bench.replication_server import running_portal  # noqa: E402
from bench.replication_tools import INSTALL_HINT, TOOLS, find_restored  # noqa: E402
from bench.store import (  # noqa: E402
    MiB,
    apply_change,
    django_settings,
    file_sha256,
    generate_image,
    mib,
    parse_size,
)

PHASES = ("full", "incr", "list", "list1", "restore")
TARGETS = {"full": 1.5, "incr": 3.0, "list": 20.0}
AGENT_COLUMNS = {"cli": "agent CLI", "lib": "agent lib"}


@dataclass
class Point:
    """One state of the disk: its image file, the extents written since the previous state."""

    name: str
    path: Path
    extents: list[tuple[int, int]] = field(default_factory=list)
    sha256: str = ""
    areas: Path | None = None  # the extents as a --changed-areas JSON file
    changed: int = 0  # bytes written
    zstd: int = 0  # zstd-1 size of the written extents
    chunk_zstd: int = 0  # zstd-1 size of the chunks they touch (the floor for fixed chunks)
    chunks: int = 0


def merged(extents: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping or touching runs joined (as CBT reports areas)."""
    out: list[list[int]] = []
    for start, length in sorted(extents):
        if out and start <= out[-1][0] + out[-1][1]:
            out[-1][1] = max(out[-1][1], start + length - out[-1][0])
        else:
            out.append([start, length])
    return [(s, n) for s, n in out]


def describe_change(point: Point, chunk_size: int) -> None:
    """Changed bytes, their zstd-1 size, and the zstd-1 size of the chunks they touch."""
    cctx = zstandard.ZstdCompressor(level=1)
    touched = set()
    with open(point.path, "rb") as f:
        for start, length in point.extents:
            point.changed += length
            point.zstd += len(cctx.compress(os.pread(f.fileno(), length, start)))
            touched.update(range(start // chunk_size, (start + length - 1) // chunk_size + 1))
        for i in sorted(touched):
            piece = os.pread(f.fileno(), chunk_size, i * chunk_size)
            if piece.count(0) != len(piece):
                point.chunk_zstd += len(cctx.compress(piece))
    point.chunks = len(touched)


def make_points(tmp: Path, args, chunk_size: int) -> list[Point]:
    started = time.perf_counter()
    points = [Point("B", tmp / "image-B.img")]
    info = generate_image(points[0].path, args.size, args.seed)
    for name, fraction in (("A", args.change), ("C", args.change), ("D", 0.01)):
        point = Point(name, tmp / f"image-{name}.img")
        written = apply_change(
            points[-1].path, point.path, args.size, args.seed + len(points), fraction
        )
        point.extents = merged(written)
        point.areas = tmp / f"areas-{name}.json"
        point.areas.write_text(json.dumps([{"start": s, "length": n} for s, n in point.extents]))
        describe_change(point, chunk_size)
        points.append(point)
    for point in points:
        point.sha256 = file_sha256(point.path)
    print(
        f"image {mib(args.size)} MiB in {info['runs']} runs: zeros {mib(info['zero'])}, text "
        f"{mib(info['text'])}, random {mib(info['random'])} MiB (generated in "
        f"{time.perf_counter() - started:.1f} s)"
    )
    for p in points[1:]:
        print(
            f"  {p.name}: {len(p.extents)} extents, {mib(p.changed)} MiB written, zstd-1 "
            f"{mib(p.zstd)} MiB; {p.chunks} chunks touched, zstd-1 {mib(p.chunk_zstd)} MiB"
        )
    return points


def place(point: Point, disk: Path) -> None:
    """The disk now holds ``point``: same path (and inode), new content, new mtime."""
    shutil.copyfile(point.path, disk)


def check(path: Path, point: Point) -> str:
    return "ok" if file_sha256(path) == point.sha256 else "FAIL"


# -- one run of each contender -------------------------------------------------------------------


def run_tool(tool_cls, folder: Path, disk: Path, points: dict[str, Point]) -> dict:
    """restic or borg: backup of B, then A at the same path, restore of A."""
    tool = tool_cls(folder)
    tool.init()
    place(points["B"], disk)
    out = {"full": tool.backup(disk), "full_wire": tool.repo_bytes()}
    place(points["A"], disk)
    out["incr"] = tool.backup(disk)
    out["incr_wire"] = tool.repo_bytes() - out["full_wire"]
    target = folder / "restored"
    out["restore"] = tool.restore(target)
    restored = find_restored(target, disk.name)
    out["check"] = check(restored, points["A"])
    shutil.rmtree(folder)
    return out


def run_agent(runner: AgentRunner, disk: Path, points: dict[str, Point], restored: Path) -> dict:
    """The agent: full (B), incremental without a list (A), with the list (C, then D 1 %),
    restore of A."""
    out = {}
    steps = (("full", "B", False), ("incr", "A", False), ("list", "C", True), ("list1", "D", True))
    for phase, name, with_list in steps:
        place(points[name], disk)
        result = runner.replicate(phase, disk, points[name].areas if with_list else None)
        out[phase], out[f"{phase}_result"] = result.seconds, result
    out["restore"] = runner.restore("restore", out["incr_result"].snapshot, restored)
    out["check"] = check(restored, points["A"])
    out["server"] = runner.server_figures([out[f"{p}_result"].snapshot for p in PHASES[:4]])
    return out


def best(runs: list[dict]) -> dict:
    """Per phase the fastest run; the other figures from the last run."""
    out = dict(runs[-1])
    for phase in PHASES:
        times = [r[phase] for r in runs if phase in r]
        if times:
            out[phase] = min(times)
    out["check"] = "ok" if all(r["check"] == "ok" for r in runs) else "FAIL"
    return out


# -- the table -----------------------------------------------------------------------------------


def print_tables(args, points: dict[str, Point], results: dict[str, dict]) -> None:
    agents = [k for k in AGENT_COLUMNS.values() if k in results]
    tools = [k for k in ("restic", "borg") if k in results]
    cols = agents + tools
    change = f"{args.change * 100:g} %"
    rows = (
        ("full", "full replication (B)", "full"),
        ("incr", f"incremental, no list ({change}, A)", "incr"),
        ("list", f"incremental, --changed-areas ({change}, C)", "incr"),
        ("list1", "incremental, --changed-areas (1 %, D)", "incr"),
        ("restore", "restore (A)", "restore"),
    )
    head = f"{'seconds, best of ' + str(args.repeat):42}" + "".join(f"{c:>10}" for c in cols)
    ratio_head = "".join(f"{'x ' + c.split()[-1]:>7}" for c in agents) if tools else ""
    print(f"\n{head}{ratio_head}{'target':>8}")
    print("-" * (len(head) + len(ratio_head) + 8))
    for phase, label, tool_phase in rows:
        cells = ""
        for c in cols:
            value = results[c].get(phase if c in agents else tool_phase)
            text = "-" if value is None else f"{value:.2f}"
            cells += f"{'(' + text + ')' if c in tools and phase.startswith('list') else text:>10}"
        ref = min((results[t][tool_phase] for t in tools), default=None)
        ratios = "".join(
            f"{ref / results[a][phase]:7.2f}" if ref and results[a].get(phase) else f"{'-':>7}"
            for a in agents
        )
        target = f">={TARGETS[phase]:g}x" if phase in TARGETS and tools else ""
        print(f"{label:42}{cells}{ratios if tools else ''}{target:>8}")
        if phase == "full":
            rates = "".join(f"{args.size / results[c][phase] / 1e6:10.0f}" for c in cols)
            print(f"{'  MB/s (image bytes, 10^6)':42}{rates}")
    checks = "".join(f"{results[c]['check']:>10}" for c in cols)
    print(f"{'  restore bit-exact (SHA-256)':42}{checks}")
    print(
        "x CLI / x lib: the faster of restic and borg in this run divided by the agent's time\n"
        "(higher is better). restic and borg have no change list: the list rows compare with\n"
        "their A incremental (in brackets). agent CLI: `python -m agent replicate|restore` as a\n"
        "process (interpreter start, inventory report, job); agent lib: replicate_disks /\n"
        "restore_snapshot called in the bench process with a kept HTTP client (the job alone)."
    )
    print_wire(args, points, results, agents, tools)
    print_server(results, agents)


def print_wire(args, points, results, agents, tools) -> None:
    change = f"{args.change * 100:g} %"
    head = (
        f"{'MiB':42}{'written':>9}{'zstd-1':>9}{'chunks':>9}"
        + "".join(f"{c:>11}" for c in agents[:1] + tools)
        + f"{'x zstd':>8}{'target':>8}{'x chunks':>9}"
    )
    print(f"\n{head}")
    print("-" * len(head))
    for phase, name, label in (
        ("full", "B", "full (B)"),
        ("incr", "A", f"{change} incremental (A), no list"),
        ("list", "C", f"{change} incremental (C), --changed-areas"),
        ("list1", "D", "1 % incremental (D), --changed-areas"),
    ):
        p = points[name]
        if phase == "full":
            line = f"{label:42}{mib(args.size):>9}{'':>18}"
        else:
            line = f"{label:42}{mib(p.changed):>9}{mib(p.zstd):>9}{mib(p.chunk_zstd):>9}"
        r = results[agents[0]].get(f"{phase}_result") if agents else None
        line += f"{mib(r.bytes_sent):>11}" if r else ("" if not agents else f"{'-':>11}")
        for t in tools:
            key = {"full": "full_wire", "incr": "incr_wire"}.get(phase)
            line += f"{mib(results[t][key]):>11}" if key else f"{'-':>11}"
        if r and phase != "full":
            target = "<=1.5x" if phase == "list1" else ""
            line += f"{r.bytes_sent / p.zstd:8.2f}{target:>8}{r.bytes_sent / p.chunk_zstd:9.2f}"
        print(line)
    print(
        "written: bytes the change overwrote (256 KiB runs); zstd-1: those bytes compressed;\n"
        "chunks: the whole server chunks they touch, zstd-1 (the least a store of fixed chunks\n"
        "of that size can receive); agent: bytes_sent from its JSON (every request body);\n"
        "restic / borg: growth of their repository; x zstd, x chunks: agent bytes / those."
    )


def print_server(results, agents) -> None:
    """The agent's bytes_sent against what the server recorded (last run)."""
    if not agents:
        return
    print(
        f"\n{'server cross-check (last run)':30}{'sent B':>13}{'chunk bodies B':>16}"
        f"{'other B':>10}{'chunks':>7}{'new':>5}{'server CPU s':>13}{'agent CPU s':>12}"
    )
    for a in agents:
        server = results[a].get("server") or {}
        for phase in PHASES[:4]:
            r = results[a].get(f"{phase}_result")
            s = server.get(r.snapshot) if r else None
            if not s:
                print(f"  {a} {phase}: the server has no upload session for {r and r.snapshot}")
                continue
            print(
                f"  {a + ' ' + phase:28}{r.bytes_sent:>13,}{s['bytes_received']:>16,}"
                f"{r.bytes_sent - s['bytes_received']:>10,}{s['chunks_uploaded']:>7}"
                f"{s['new_chunks']:>5}{r.server_cpu:>13.2f}{r.agent_cpu:>12.2f}"
            )
    print(
        "chunk bodies: what the upload session received; other: missing-queries and the\n"
        "commit. CPU: the gunicorn process tree and the agent (CLI: its process; lib: this one)."
    )


# -- main ----------------------------------------------------------------------------------------


def work_dir(args) -> str | None:
    """tmpfs when it has room (images, repositories, the server's store, restores)."""
    if args.tmp:
        return args.tmp
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 14 * args.size:
        return str(shm)
    return None


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"{text}: a fraction above 0 and at most 0.5")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=512 * MiB, help="image size (512M)")
    parser.add_argument("--change", type=fraction, default=0.02, help="fraction changed (0.02)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; best is shown")
    parser.add_argument(
        "--chunk-size",
        type=parse_size,
        help="the server's (ACURA_CHUNK_SIZE); default: the server's default",
    )
    parser.add_argument("--only", default="agent,restic,borg", help="contenders to run")
    parser.add_argument("--no-lib", action="store_true", help="skip the in-process agent runs")
    parser.add_argument("--profile", action="store_true", help="one more agent run under py-spy")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--tmp", help="parent folder for the data (default /dev/shm if room)")
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="acura-bench-replication-", dir=work_dir(args)))
    os.environ.setdefault("ACURA_DATA_DIR", str(tmp / "settings-data"))
    if args.chunk_size:  # read by the settings here and by the server (same environment)
        os.environ["ACURA_CHUNK_SIZE"] = str(args.chunk_size)
    try:
        run(args, only, tmp)
    finally:
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, only: set[str], tmp: Path) -> None:
    chunk_size = django_settings().STORE_CHUNK_SIZE
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, data in {tmp.parent}, "
        f"server chunk size {chunk_size // 1024} KiB"
    )
    points = {p.name: p for p in make_points(tmp, args, chunk_size)}
    disk = tmp / "disk" / "disk.img"
    disk.parent.mkdir()
    tools = []
    for cls in TOOLS:
        if cls.name in only:
            version = cls.version()
            print(f"{cls.name}: {version or 'not installed (' + INSTALL_HINT + ')'}")
            if version:
                tools.append(cls)
    runs: dict[str, list[dict]] = {}
    with contextlib.ExitStack() as stack:
        portal, modes = None, []
        if "agent" in only:
            portal = stack.enter_context(running_portal(tmp / "portal"))
            modes = ["cli"] + ([] if args.no_lib or not agent_library() else ["lib"])
            print(f"server: gunicorn (2 workers x 4 threads) on {portal.database}, {portal.url}")
        # Interleaved (each contender once per round), so a noisy spell on the machine hits
        # them alike.
        for i in range(args.repeat):
            line = []
            for cls in tools:
                out = run_tool(cls, tmp / f"{cls.name}-{i}", disk, points)
                runs.setdefault(cls.name, []).append(out)
                line.append(f"{cls.name} " + _times(out, ("full", "incr", "restore")))
            for mode in modes:
                name = AGENT_COLUMNS[mode]
                try:  # one failure is reported, and the other contenders still run
                    runner = AgentRunner(portal, tmp / f"agent-{mode}-{i}", mode, disk)
                    try:
                        out = run_agent(runner, disk, points, tmp / "restored.img")
                    finally:
                        runner.close()
                except RuntimeError as exc:
                    print(f"!! {name}, run {i + 1} failed: {exc}", file=sys.stderr)
                    line.append(f"{name} FAILED")
                    continue
                runs.setdefault(name, []).append(out)
                line.append(f"{name} " + _times(out, PHASES))
            print(f"run {i + 1}: " + " | ".join(line), flush=True)
        if args.profile and portal is not None:
            profile_run(portal, tmp / "agent-profile", disk, points, tmp / "restored.img", place)
    results = {name: best(found) for name, found in runs.items()}
    print_tables(args, points, results)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"\n(load average at the end {os.getloadavg()[0]:.1f}; child processes used "
        f"{usage.ru_utime + usage.ru_stime:.1f} CPU s in all)"
    )


def _times(out: dict, phases) -> str:
    return " ".join(f"{out[p]:.2f}" for p in phases if p in out) + (
        "" if out["check"] == "ok" else " FAIL"
    )


if __name__ == "__main__":
    main()
