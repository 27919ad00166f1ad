"""The Linux agent packages: ``hlragent.deb`` (dpkg-deb) and ``hlragent.rpm`` (rpmbuild).

Both install one layout, staged once here:
``/opt/hlragent/agent/`` (the agent), ``/opt/hlragent/bin/hlragent-start`` (enroll once, then
run), ``/usr/bin/acura-agent`` (the launcher), ``/etc/hlragent/agent.json`` (the package
config, 0600, kept over upgrades once enrolled) and the systemd unit. The DKMS variant adds
the dkms dependency and ``/usr/src/hlrsnap-<version>/`` (see templates/dkms/README: the
driver itself does not exist in this project).
"""

from __future__ import annotations

from pathlib import Path

from .spec import PackageSpec
from .staging import AGENT_VERSION, Stage, config_json, render, run_tool

NAME = "hlragent"
PREFIX = "/opt/hlragent"
CONFIG = "/etc/hlragent/agent.json"
MAINTAINER = "Acura Portal <packages@acura.invalid>"
SUMMARY = "Acura replication agent for Linux"
DEB_DEPENDS = ["python3 (>= 3.11)", "python3-zstandard"]
UNIT_DIRS = {"debian": "lib/systemd/system", "rhel": "usr/lib/systemd/system"}


def description(spec: PackageSpec, config: dict) -> list[str]:
    """The long description, one line per list item (no control-field injection)."""
    driver = "DKMS" if spec.driver == "dkms" else "pre-built"
    server = " ".join(str(config.get("server", "")).split())
    customer = " ".join(str((config.get("customer") or {}).get("slug", "")).split())
    return [
        "Replicates this machine's disks into the Acura portal's deduplicating snapshot",
        "store. The hlragent service enrolls once with the enrollment token in",
        f"{CONFIG}, then heartbeats, reports the machine and runs",
        "replication jobs.",
        f"Portal: {server}; customer: {customer or '-'}; driver deployment: {driver}.",
    ]


def stage_tree(stage: Stage, spec: PackageSpec, config: dict) -> list[str]:
    """Write the installed files under ``stage`` (a filesystem root); returns them sorted."""
    values = {"name": NAME, "prefix": PREFIX, "config": CONFIG}
    stage.copy_agent(f"{PREFIX[1:]}/agent")
    stage.write(f"{PREFIX[1:]}/bin/{NAME}-start", render("linux/start", **values), 0o755)
    stage.write("usr/bin/acura-agent", render("linux/acura-agent", **values), 0o755)
    stage.write(CONFIG[1:], config_json(config), 0o600)
    unit = f"{UNIT_DIRS[spec.distro]}/{NAME}.service"
    stage.write(unit, render("linux/unit.service", **values))
    if spec.driver == "dkms":
        src = f"usr/src/hlrsnap-{AGENT_VERSION}"
        stage.write(f"{src}/dkms.conf", render("dkms/dkms.conf", version=AGENT_VERSION))
        stage.write(f"{src}/README", render("dkms/README", version=AGENT_VERSION))
    stage.settle()
    (stage.root / "etc/hlragent").chmod(0o700)  # the config holds the token, then the credential
    return sorted(str(p.relative_to(stage.root)) for p in stage.files())


# -- .deb -------------------------------------------------------------------------------------


def build_deb(spec: PackageSpec, config: dict, work: Path, target: Path) -> None:
    stage = Stage(work / "root")
    files = stage_tree(stage, spec, config)
    size_kib = sum((stage.root / f).stat().st_size + 1023 for f in files) // 1024
    depends = [*DEB_DEPENDS, *(["dkms"] if spec.driver == "dkms" else [])]
    control = [
        f"Package: {NAME}",
        f"Version: {AGENT_VERSION}",
        "Architecture: all",
        f"Maintainer: {MAINTAINER}",
        f"Installed-Size: {size_kib}",
        f"Depends: {', '.join(depends)}",
        "Section: admin",
        "Priority: optional",
        f"Description: {SUMMARY}",
        *(f" {line}" for line in description(spec, config)),
    ]
    values = {"name": NAME, "prefix": PREFIX, "config": CONFIG}
    debian = Stage(stage.root / "DEBIAN")
    debian.write("control", "\n".join(control) + "\n")
    # A conffile: dpkg keeps the enrolled config (credential) over upgrades and asks before
    # replacing a changed one (`dpkg -i --force-confnew` enrolls again with the new token).
    debian.write("conffiles", CONFIG + "\n")
    for script in ("postinst", "prerm", "postrm"):
        debian.write(script, render(f"deb/{script}", **values), 0o755)
    stage.settle()
    (stage.root / "etc/hlragent").chmod(0o700)
    run_tool(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(stage.root), str(target)])


# -- .rpm -------------------------------------------------------------------------------------

_RPM_ATTRS = {
    f"{PREFIX}/bin/{NAME}-start": "%attr(0755,root,root) ",
    "/usr/bin/acura-agent": "%attr(0755,root,root) ",
    CONFIG: "%config(noreplace) %attr(0600,root,root) ",
}


def rpm_files(files: list[str], spec: PackageSpec) -> list[str]:
    """The %files list: the agent's directory as a whole, everything else by name."""
    lines = [
        f"%dir {PREFIX}",
        f"%dir {PREFIX}/bin",
        f"{PREFIX}/agent",
        "%dir %attr(0700,root,root) /etc/hlragent",
    ]
    if spec.driver == "dkms":
        lines.append(f"%dir /usr/src/hlrsnap-{AGENT_VERSION}")
    for relative in files:
        path = "/" + relative
        if not path.startswith(f"{PREFIX}/agent/"):
            lines.append(_RPM_ATTRS.get(path, "") + path)
    return lines


def build_rpm(spec: PackageSpec, config: dict, work: Path, target: Path) -> None:
    sources = work / "sources"
    stage = Stage(sources / "root")
    files = stage_tree(stage, spec, config)
    requires = "Requires:       dkms" if spec.driver == "dkms" else ""
    text = render(
        "rpm/hlragent.spec",
        version=AGENT_VERSION,
        summary=SUMMARY,
        requires=requires,
        description="\n".join(description(spec, config)).replace("%", "%%"),
        files="\n".join(rpm_files(files, spec)),
    )
    spec_file = work / "hlragent.spec"
    spec_file.write_text(text)
    top = work / "rpmbuild"
    run_tool(
        [
            "rpmbuild",
            "-bb",
            "--define",
            f"_topdir {top}",
            "--define",
            f"_sourcedir {sources}",
            "--define",
            "_buildhost reproducible",
            "--define",
            "use_source_date_epoch_as_buildtime 1",
            "--define",
            "clamp_mtime_to_source_date_epoch 1",
            "--define",
            "_binary_payload w9.gzdio",
            "--define",
            "__os_install_post %{nil}",
            str(spec_file),
        ]
    )
    built = top / "RPMS" / "noarch" / f"{NAME}-{AGENT_VERSION}-1.noarch.rpm"
    built.replace(target)
