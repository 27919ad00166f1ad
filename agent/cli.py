"""``python -m agent`` (installed as ``acura-agent``): enroll, replicate, restore, snapshots, run.

Commands that report print ONE JSON object as their last stdout line — on failure too:
``{"error": "...", "exit_code": N}`` — and human progress and messages on stderr. Exit codes
(errors.py, README.md): 0 ok, 1 job failed, 2 usage / bad input, 3 authentication,
4 server unreachable, 5 disk unreadable.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import time
from urllib.parse import urlsplit

from . import __version__, inventory
from .changes import assign, load_changed_areas
from .config import Config, normalize_fingerprint
from .disk import SourceDisk, key_for
from .errors import EXIT_FAILED, EXIT_OK, AgentError, ServerError, UsageError
from .http import Client, client_from_config
from .progress import Halt
from .replicate import DiskSource, replicate_disks

log = logging.getLogger("agent")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is an AgentError (JSON last line, exit 2) like the rest."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> Parser:
    parser = Parser(prog="acura-agent", description="Acura replication agent")
    parser.add_argument("--version", action="version", version=f"acura-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output on stderr")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    enroll = commands.add_parser("enroll", help="exchange an enrollment token for a credential")
    enroll.add_argument("--config", required=True, help="config file to write (0600)")
    enroll.add_argument("--server", help="portal URL (default: the package config's)")
    enroll.add_argument("--token", help="enrollment token (default: the package config's)")
    enroll.add_argument("--fingerprint", help="SHA-256 of the server's TLS certificate (pin)")
    enroll.add_argument("--state-dir", help="where the index cache and job records live")
    enroll.add_argument("--force", action="store_true", help="enroll again over a credential")

    rep = commands.add_parser("replicate", help="replicate disks of this machine now")
    rep.add_argument("--config", required=True)
    rep.add_argument("--disk", action="append", required=True, help="image file or device")
    rep.add_argument("--changed-areas", help="JSON extents changed since the last snapshot")
    rep.add_argument("--threads", type=int, help="hash/compress threads (default: CPUs)")

    res = commands.add_parser("restore", help="write a snapshot's disk to a file or device")
    res.add_argument("--config", required=True)
    res.add_argument("--snapshot", required=True)
    res.add_argument("--output", required=True)
    res.add_argument("--threads", type=int, default=4, help="parallel range requests")

    snaps = commands.add_parser("snapshots", help="list the snapshots")
    snaps.add_argument("--config", required=True)
    snaps.add_argument("--machine", type=int, help="only this machine's (server id)")
    snaps.add_argument("--disk", help="only this disk key's")

    run = commands.add_parser("run", help="run as a service (heartbeat, jobs, logs)")
    run.add_argument("--config", required=True)
    return parser


LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging(verbose: bool) -> None:
    root = logging.getLogger("agent")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(handler)


def add_log_file(path: str) -> None:
    try:
        handler = logging.FileHandler(path)
    except OSError as exc:
        raise UsageError(f"cannot open the log file {path}: {exc.strerror}") from None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.INFO)
    logging.getLogger("agent").addHandler(handler)


def emit(data: dict) -> None:
    """The report: one JSON object, the last line of stdout."""
    sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
    sys.stdout.flush()


def echo(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def every_second(write):
    """``write``, but at most once a second (the last line always comes from the report)."""
    last = [0.0]

    def echo_line(line: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            write(line)

    return echo_line


def install_signals(halt: Halt) -> None:
    def handler(signum, _frame):
        halt.stop(f"interrupted by {signal.Signals(signum).name}")

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


# -- commands ---------------------------------------------------------------------------------


def cmd_enroll(args) -> dict:
    config = Config.load(args.config, missing_ok=True)
    if config.credential and not args.force:
        raise UsageError(
            f"{args.config} already holds the credential of agent {config.get('display_id')}; "
            "pass --force to enroll again"
        )
    server = args.server or config.server
    token = args.token or config.data.get("enrollment_token")
    if not server or not token:
        raise UsageError("enroll needs --server and --token (or a package config holding them)")
    fingerprint = (
        normalize_fingerprint(args.fingerprint) if args.fingerprint else config.fingerprint
    )
    client = Client(
        server,
        fingerprint=fingerprint,
        retries=config.get("retries"),
        auth_label="enrollment token",
    )
    platform = config.data.get("platform") or "linux"
    body = {"token": token, "hostname": socket.gethostname(), "version": __version__}
    body["platform"] = platform
    answer = client.json("POST", "enroll/", body)
    data = config.data
    data.pop("enrollment_token", None)
    data.update(
        server=server.rstrip("/"),
        server_fingerprint=fingerprint,
        credential=answer["credential"],
        agent_id=answer["agent_id"],
        display_id=answer.get("display_id"),
        customer=answer.get("customer"),
        cloud_id=answer.get("cloud_id"),
        platform=answer.get("platform", platform),
        group=answer.get("group"),
        heartbeat_seconds=answer.get("heartbeat_seconds") or data.get("heartbeat_seconds") or 15,
    )
    if args.state_dir:
        data["state_dir"] = args.state_dir
    data.setdefault(
        "machine", {"external_id": inventory.machine_id(config), "name": socket.gethostname()}
    )
    config.save()
    log.info("enrolled as agent %s; config written to %s", answer.get("display_id"), args.config)
    keys = ("agent_id", "display_id", "customer", "platform", "group", "cloud_id")
    return {**{k: answer.get(k) for k in keys}, "config": str(args.config)}


def _open_sources(config: Config, paths: list[str], changed_file: str | None) -> list[DiskSource]:
    keys = [key_for(path, config.disks) for path in paths]
    if len(set(keys)) != len(keys):
        raise UsageError(f"two --disk arguments have the same disk key: {keys}")
    changed = load_changed_areas(changed_file) if changed_file else None  # bad input first
    disks: list[SourceDisk] = []
    try:
        for path, key in zip(paths, keys, strict=True):
            disks.append(SourceDisk(path, key))
        extents = {}
        if changed is not None:
            extents = assign(changed, [(d.key, d.path, d.size) for d in disks])
    except AgentError:
        for disk in disks:
            disk.close()
        raise
    return [DiskSource(disk, extents.get(disk.key)) for disk in disks]


def cmd_replicate(args) -> dict:
    config = Config.load(args.config)
    config.require_enrolled()
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be 1 or more")
    sources = _open_sources(config, args.disk, args.changed_areas)
    halt = Halt()
    install_signals(halt)
    threads = args.threads or config.threads
    client = client_from_config(config, stop=halt, pool_size=threads * 2 + 4)
    disks = {s.disk.key: s.disk.path for s in sources}

    def replicate(machine: dict):
        return replicate_disks(
            client,
            machine["id"],
            sources,
            state_dir=config.state_dir,
            threads=threads,
            bandwidth_limit_mbps=config.get("bandwidth_limit_mbps"),
            halt=halt,
            echo=echo,
        )

    try:
        # The inventory goes out only when the host reports something new (or daily): the
        # server's answer to the same report is cached, saving a round trip per job.
        machine, cached = inventory.report_cached(client, config, disks)
        try:
            result = replicate(machine)
        except ServerError as exc:
            # The cached machine is gone on the server (deleted, moved to another agent):
            # jobs/ answered 404 before anything started. Report afresh and go again.
            if not (cached and exc.status == 404 and exc.where == "POST jobs/"):
                raise
            inventory.forget_report(config)
            machine, _ = inventory.report_cached(client, config, disks)
            result = replicate(machine)
    finally:
        for source in sources:
            source.disk.close()
        client.close()
    report = result.as_dict()
    report["machine"] = machine["id"]
    return report


def cmd_restore(args) -> dict:
    from .restore import restore_snapshot  # only this command needs it

    config = Config.load(args.config)
    if args.threads < 1:
        raise UsageError("--threads must be 1 or more")
    client = client_from_config(config, pool_size=args.threads + 2)
    try:
        return restore_snapshot(
            client,
            args.snapshot,
            args.output,
            threads=args.threads,
            retries=config.get("retries"),
            echo=every_second(echo),
        )
    finally:
        client.close()


def cmd_snapshots(args) -> dict:
    config = Config.load(args.config)
    client = client_from_config(config)
    params = {}
    if args.machine is not None:
        params["machine"] = args.machine
    if args.disk:
        params["disk"] = args.disk
    found: list[dict] = []
    page = client.json("GET", "snapshots/", params=params or None)
    while True:
        found.extend(page.get("results", []))
        following = page.get("next")
        if not following:
            break
        page = client.json("GET", _path_of(following))
    for snap in found:
        echo(
            f"{snap.get('id')}  machine {snap.get('machine')}  disk {snap.get('disk')}  "
            f"{snap.get('created_at')}  {snap.get('disk_size')} bytes  {snap.get('state')}"
            f"{'  ' + snap['consistency'] if snap.get('consistency') else ''}"
        )
    return {"count": len(found), "snapshots": found}


def _path_of(url: str) -> str:
    """A paginated ``next`` link as a path (the client adds the server)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def cmd_run(args) -> int:
    from .daemon import Daemon

    config = Config.load(args.config)
    config.require_enrolled()
    if config.get("log_file"):
        add_log_file(config.get("log_file"))
    halt = Halt()
    daemon = Daemon(config, halt)
    signal.signal(signal.SIGINT, lambda s, f: daemon.stop(f"{signal.Signals(s).name} received"))
    signal.signal(signal.SIGTERM, lambda s, f: daemon.stop(f"{signal.Signals(s).name} received"))
    return daemon.run()


COMMANDS = {
    "enroll": cmd_enroll,
    "replicate": cmd_replicate,
    "restore": cmd_restore,
    "snapshots": cmd_snapshots,
}


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        echo(f"error: {exc}")
        emit({"error": str(exc), "exit_code": exc.exit_code})
        return exc.exit_code
    setup_logging(args.verbose)
    try:
        if args.command == "run":
            return cmd_run(args)
        report = COMMANDS[args.command](args)
    except AgentError as exc:
        log.error("%s", exc)
        emit({"error": str(exc), "exit_code": exc.exit_code})
        return exc.exit_code
    report.setdefault("seconds", round(time.monotonic() - started, 3))
    emit(report)
    if args.command == "replicate" and report.get("state") != "succeeded":
        return EXIT_FAILED
    return EXIT_OK
