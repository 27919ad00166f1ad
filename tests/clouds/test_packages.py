"""Agent packages built with the real tools and read back with the real tools.

.deb: dpkg-deb; .rpm: rpmbuild, rpm, rpm2archive; MSI: wixl, msiinfo, msiextract; the
appliance archive: tarfile, its install.sh run into a scratch root. The extracted Linux
package runs the agent: its start script enrolls against an unreachable portal and exits 4,
which proves the launcher, the start script and the packaged config work together.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import agent
from clouds.packages import (
    PackageBuildError,
    PackageSpec,
    build_package,
    package_content_type,
    package_filename,
)
from clouds.packages.staging import run_tool

VERSION = agent.__version__
TOOLS = {
    "dpkg-deb": "dpkg",
    "rpmbuild": "rpm",
    "rpm": "rpm",
    "rpm2archive": "rpm2cpio",
    "wixl": "wixl",
    "msiinfo": "msitools",
    "msiextract": "msitools",
    "systemd-analyze": "systemd",
}
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused at once
STATIC = {  # the product description's example, DNS as the wizard's comma-separated field
    "mode": "static",
    "ip": "172.22.6.230",
    "netmask": "255.255.0.0",
    "gateway": "172.22.1.2",
    "dns": "1.1.1.1, 2.2.2.2",
}


def static(**changes) -> dict:
    return {**STATIC, **changes}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: apt-get install {TOOLS[tool]}")
    return path


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    need(str(args[0]))
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=True, **kwargs
    )


def package_config(platform: str) -> dict:
    return {
        "server": UNREACHABLE,
        "server_fingerprint": None,
        "enrollment_token": "acet_pkgtest.s3cr3t",
        "customer": {"id": 3, "slug": "acme"},
        "cloud_id": 7 if platform in ("vmware", "ovirt") else None,
        "platform": platform,
        "role": "agent",
        "retries": 0,  # enroll gives up at once on the unreachable portal
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build each variant once per module: ``built(key, spec, **kwargs) -> Path``."""
    cache: dict[str, Path] = {}

    def build(key: str, spec: PackageSpec, **kwargs) -> Path:
        if key not in cache:
            cache[key] = build_package(
                spec, package_config(spec.platform), tmp_path_factory.mktemp(key), **kwargs
            )
        return cache[key]

    return build


# -- specs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"platform": "solaris"}, "unknown platform 'solaris'"),
        ({"platform": "linux"}, "a linux package needs distro"),
        ({"platform": "linux", "distro": "arch"}, "a linux package needs distro"),
        ({"platform": "linux", "distro": "debian", "driver": "kpatch"}, "unknown driver"),
        ({"platform": "windows", "distro": "debian"}, "linux packages only"),
        ({"platform": "linux", "distro": "rhel", "network": {"mode": "dhcp"}}, "appliance"),
        ({"platform": "vmware", "network": {"mode": "bridge"}}, "'dhcp' or 'static'"),
        ({"platform": "vmware", "network": static(ip="10.0.0.300")}, "network ip '10.0.0.300'"),
        ({"platform": "vmware", "network": static(gateway="10.1.9.1")}, "outside the agent's"),
        ({"platform": "ovirt", "network": static(netmask="255.0.255.0")}, "not a subnet mask"),
        ({"platform": "ovirt", "network": static(dns=" , ")}, "at least one DNS server"),
        ({"platform": "vmware", "network": static(dns=["1.1.1.x"])}, "network dns '1.1.1.x'"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        PackageSpec(**kwargs)


def test_bad_config_is_refused_before_any_build(tmp_path):
    spec = PackageSpec("linux", "debian")
    with pytest.raises(ValueError, match="needs an http"):
        build_package(spec, {**package_config("linux"), "server": "portal:8000"}, tmp_path)
    with pytest.raises(ValueError, match="enrollment_token"):
        build_package(spec, {"server": UNREACHABLE, "platform": "linux"}, tmp_path)
    with pytest.raises(ValueError, match="for platform 'windows'"):
        build_package(spec, package_config("windows"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_filenames_and_content_types():
    cases = {
        PackageSpec("linux", "debian"): ("hlragent.deb", "application/vnd.debian.binary-package"),
        PackageSpec("linux", "rhel", "dkms"): ("hlragent.rpm", "application/x-rpm"),
        PackageSpec("windows"): ("hwragent.zip", "application/zip"),
        PackageSpec("vmware"): ("hvragent-vmware-appliance.tar.gz", "application/gzip"),
        PackageSpec("ovirt"): ("hvragent-ovirt-appliance.tar.gz", "application/gzip"),
    }
    for spec, (name, kind) in cases.items():
        assert (package_filename(spec), package_content_type(spec)) == (name, kind)
    assert PackageSpec("linux", "debian").driver == "prebuilt"
    assert PackageSpec("vmware").network == {"mode": "dhcp"}


def test_missing_or_failing_tool_is_a_package_build_error(tmp_path, monkeypatch):
    with pytest.raises(PackageBuildError, match="boom") as failed:
        run_tool(["sh", "-c", "echo boom >&2; exit 3"])
    assert "exit 3" in str(failed.value)
    monkeypatch.setenv("PATH", str(tmp_path))  # no dpkg-deb, rpmbuild or wixl in here
    with pytest.raises(PackageBuildError, match="apt-get install dpkg"):
        build_package(PackageSpec("linux", "debian"), package_config("linux"), tmp_path)
    with pytest.raises(PackageBuildError, match="apt-get install rpm"):
        build_package(PackageSpec("linux", "rhel"), package_config("linux"), tmp_path)
    with pytest.raises(PackageBuildError, match="apt-get install wixl"):
        build_package(PackageSpec("windows"), package_config("windows"), tmp_path)


# -- .deb -------------------------------------------------------------------------------------


def test_deb_control_fields_and_contents(built):
    deb = built("deb", PackageSpec("linux", "debian", "prebuilt"))
    assert deb.name == "hlragent.deb"
    info = run("dpkg-deb", "--info", deb).stdout
    for line in (
        "Package: hlragent",
        f"Version: {VERSION}",
        "Architecture: all",
        "Maintainer: Acura Portal",
        "Depends: python3 (>= 3.11), python3-zstandard\n",
        "Description: Acura replication agent for Linux",
        f"Portal: {UNREACHABLE}; customer: acme; driver deployment: pre-built.",
    ):
        assert line in info
    assert "dkms" not in info
    for script in ("postinst", "prerm", "postrm", "conffiles"):
        assert script in info
    assert run("dpkg-deb", "--field", deb, "Version").stdout.strip() == VERSION

    listing = {}
    for row in run("dpkg-deb", "--contents", deb).stdout.splitlines():
        mode, owner, *_, name = row.split()
        listing[name] = (mode, owner)
    assert listing["./etc/hlragent/agent.json"] == ("-rw-------", "root/root")
    assert listing["./etc/hlragent/"][0] == "drwx------"
    assert listing["./usr/bin/acura-agent"][0] == "-rwxr-xr-x"
    assert listing["./opt/hlragent/bin/hlragent-start"][0] == "-rwxr-xr-x"
    assert "./lib/systemd/system/hlragent.service" in listing
    assert "./opt/hlragent/agent/cli.py" in listing
    assert "./opt/hlragent/agent/__main__.py" in listing
    assert not any("__pycache__" in name or "/usr/src/" in name for name in listing)
    assert not any("/agent/vmware" in name for name in listing)  # the appliance's only


def test_deb_maintainer_scripts_and_conffile(built, tmp_path):
    deb = built("deb", PackageSpec("linux", "debian", "prebuilt"))
    run("dpkg-deb", "--control", deb, tmp_path / "DEBIAN")
    control = tmp_path / "DEBIAN"
    assert (control / "conffiles").read_text() == "/etc/hlragent/agent.json\n"
    postinst = (control / "postinst").read_text()
    assert "systemctl enable hlragent.service" in postinst
    assert "[ -d /run/systemd/system ]" in postinst
    assert "systemctl disable --now hlragent.service" in (control / "prerm").read_text()
    for script in ("postinst", "prerm", "postrm"):
        assert os.access(control / script, os.X_OK)
        run("sh", "-n", control / script)


def test_deb_extracted_tree_runs_the_agent_with_the_packaged_config(built, tmp_path):
    deb = built("deb", PackageSpec("linux", "debian", "prebuilt"))
    root = tmp_path / "root"
    run("dpkg-deb", "-x", deb, root)
    config = root / "etc/hlragent/agent.json"
    assert json.loads(config.read_text()) == package_config("linux")

    # The launcher and the start script as installed, pointed at the extracted tree; the
    # test's python3 (3.11 with zstandard) first on PATH, run outside the source tree.
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "ACURA_AGENT_HOME": str(root / "opt/hlragent"),
        "ACURA_AGENT": str(root / "usr/bin/acura-agent"),
    }
    where = subprocess.run(
        ["python3", "-c", "import agent; print(agent.__file__)"],
        env={**env, "PYTHONPATH": env["ACURA_AGENT_HOME"]},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(root / "opt/hlragent/agent/__init__.py")
    version = subprocess.run(
        [root / "usr/bin/acura-agent", "--version"], env=env, cwd=tmp_path, capture_output=True
    )
    assert version.stdout.decode().strip() == f"acura-agent {VERSION}"

    started = subprocess.run(
        [root / "opt/hlragent/bin/hlragent-start", config],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 4, started.stderr
    report = json.loads(started.stdout.strip().splitlines()[-1])
    assert report["exit_code"] == 4
    assert UNREACHABLE in report["error"]  # the server came from the packaged config


def dpkg_in(root: Path, *args) -> subprocess.CompletedProcess:
    """dpkg on a scratch root; maintainer scripts run chrootless with DPKG_ROOT set."""
    for folder in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name in ("status", "available"):
        (root / "var/lib/dpkg" / name).touch()
    options = ["--force-depends", "--force-script-chrootless", "--log=/dev/null"]
    return run("dpkg", f"--root={root}", *options, *args)


def test_deb_installs_removes_and_purges_in_a_scratch_root(built, tmp_path):
    deb = built("deb", PackageSpec("linux", "debian", "prebuilt"))
    root = tmp_path / "root"
    dpkg_in(root, "-i", deb)
    assert "Status: install ok installed" in dpkg_in(root, "-s", "hlragent").stdout
    config = root / "etc/hlragent/agent.json"
    assert config.stat().st_mode & 0o777 == 0o600
    # What a run leaves behind: the enrolled config, bytecode, the daemon's state.
    config.write_text(json.dumps({"server": UNREACHABLE, "credential": "acag_x.y"}))
    (root / "opt/hlragent/agent/__pycache__").mkdir()
    (root / "var/lib/acura-agent/indexes").mkdir(parents=True)

    dpkg_in(root, "--remove", "hlragent")
    assert not (root / "opt/hlragent/agent").exists()  # prerm dropped the bytecode too
    assert json.loads(config.read_text())["credential"] == "acag_x.y"  # a conffile stays
    dpkg_in(root, "--purge", "hlragent")
    assert not (root / "etc/hlragent").exists()
    assert not (root / "var/lib/acura-agent").exists()


def test_deb_systemd_unit_verifies(built, tmp_path):
    deb = built("deb", PackageSpec("linux", "debian", "prebuilt"))
    root = tmp_path / "root"
    run("dpkg-deb", "-x", deb, root)
    unit = (root / "lib/systemd/system/hlragent.service").read_text()
    assert "ExecStart=/opt/hlragent/bin/hlragent-start /etc/hlragent/agent.json" in unit
    assert "WantedBy=multi-user.target" in unit
    # systemd-analyze checks the ExecStart binary exists: point it at the extracted one.
    local = tmp_path / "hlragent.service"
    local.write_text(unit.replace("ExecStart=/opt/", f"ExecStart={root}/opt/"))
    verified = subprocess.run(
        [need("systemd-analyze"), "verify", local], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stderr
    assert "hlragent.service" not in verified.stderr  # no unknown keys or bad values


def test_deb_dkms_variant_depends_on_dkms_and_ships_dkms_conf(built, tmp_path):
    deb = built("deb-dkms", PackageSpec("linux", "debian", "dkms"))
    depends = run("dpkg-deb", "--field", deb, "Depends").stdout.strip()
    assert depends == "python3 (>= 3.11), python3-zstandard, dkms"
    root = tmp_path / "root"
    run("dpkg-deb", "-x", deb, root)
    source = root / f"usr/src/hlrsnap-{VERSION}"
    dkms_conf = (source / "dkms.conf").read_text()
    assert 'PACKAGE_NAME="hlrsnap"' in dkms_conf
    assert f'PACKAGE_VERSION="{VERSION}"' in dkms_conf
    assert "does not exist in this project" in dkms_conf
    assert "NOT part of this build" in (source / "README").read_text()


def test_deb_build_is_reproducible(built, tmp_path):
    first = built("deb", PackageSpec("linux", "debian", "prebuilt"))
    again = build_package(PackageSpec("linux", "debian"), package_config("linux"), tmp_path)
    assert again.read_bytes() == first.read_bytes()


# -- .rpm -------------------------------------------------------------------------------------


def test_rpm_info_files_and_scripts(built):
    rpm = built("rpm", PackageSpec("linux", "rhel", "prebuilt"))
    assert rpm.name == "hlragent.rpm"
    info = run("rpm", "-qip", rpm).stdout
    assert "Name        : hlragent" in info
    assert f"Version     : {VERSION}" in info
    assert "Architecture: noarch" in info
    requires = run("rpm", "-qp", "--requires", rpm).stdout.splitlines()
    assert "(python3 >= 3.11 or python3.11 or python3.12)" in requires  # RHEL 9: python3.11
    assert "python3-zstandard" in run("rpm", "-qp", "--recommends", rpm).stdout.splitlines()
    assert "dkms" not in requires

    files = {}
    for row in run("rpm", "-qlvp", rpm).stdout.splitlines():
        parts = row.split()
        files[parts[-1]] = parts[0]
    assert files["/etc/hlragent/agent.json"] == "-rw-------"
    assert files["/usr/bin/acura-agent"] == "-rwxr-xr-x"
    assert files["/opt/hlragent/bin/hlragent-start"] == "-rwxr-xr-x"
    assert "/usr/lib/systemd/system/hlragent.service" in files
    assert "/opt/hlragent/agent/cli.py" in files
    config_files = run("rpm", "-qp", "--configfiles", rpm).stdout.split()
    assert config_files == ["/etc/hlragent/agent.json"]

    scripts = run("rpm", "-qp", "--scripts", rpm).stdout
    assert "postinstall scriptlet" in scripts
    assert "systemctl enable hlragent.service" in scripts
    assert "preuninstall scriptlet" in scripts
    assert "systemctl disable --now hlragent.service" in scripts


def test_rpm_payload_holds_the_config(built, tmp_path):
    rpm = built("rpm", PackageSpec("linux", "rhel", "prebuilt"))
    with rpm.open("rb") as source:
        payload = subprocess.run(
            [need("rpm2archive"), "-"], stdin=source, capture_output=True, check=True
        ).stdout
    archive = tmp_path / "payload.tgz"
    archive.write_bytes(payload)
    with tarfile.open(archive) as tar:
        member = tar.getmember("./etc/hlragent/agent.json")
        assert member.mode & 0o777 == 0o600
        assert json.load(tar.extractfile(member)) == package_config("linux")
        assert "./opt/hlragent/agent/replicate.py" in tar.getnames()


def test_rpm_installs_verifies_and_erases_in_a_scratch_root(built, tmp_path):
    rpm = built("rpm", PackageSpec("linux", "rhel", "prebuilt"))
    root = tmp_path / "root"
    db = ["--root", root, "--dbpath", root / "var/lib/rpm"]
    # --noscripts: the scriptlets would run chrooted into a root without a shell.
    run("rpm", "-i", *db, "--nodeps", "--noscripts", rpm)
    assert (root / "etc/hlragent/agent.json").stat().st_mode & 0o777 == 0o600
    run("rpm", "-V", *db, "--nodeps", "hlragent")  # every file as the package says
    run("rpm", "-e", *db, "--noscripts", "hlragent")
    assert not (root / "opt/hlragent").exists()
    assert not (root / "etc/hlragent").exists()


def test_rpm_dkms_variant_and_reproducibility(built, tmp_path):
    rpm = built("rpm-dkms", PackageSpec("linux", "rhel", "dkms"))
    assert "dkms" in run("rpm", "-qp", "--requires", rpm).stdout.splitlines()
    assert f"/usr/src/hlrsnap-{VERSION}/dkms.conf" in run("rpm", "-qlp", rpm).stdout
    again = build_package(PackageSpec("linux", "rhel", "dkms"), package_config("linux"), tmp_path)
    assert again.read_bytes() == rpm.read_bytes()


# -- Windows ----------------------------------------------------------------------------------


def msi_rows(msi: Path, table: str) -> list[list[str]]:
    """A table's rows (msiinfo export prints three header lines)."""
    lines = run("msiinfo", "export", msi, table).stdout.splitlines()[3:]
    return [line.split("\t") for line in lines if line]


def unzip(package: Path, into: Path) -> Path:
    with zipfile.ZipFile(package) as archive:
        assert archive.namelist() == ["hwragent.msi", "README.txt"]
        archive.extractall(into)
    return into / "hwragent.msi"


def test_windows_zip_holds_the_msi_and_install_steps(built, tmp_path):
    package = built("msi", PackageSpec("windows"))
    assert package.name == "hwragent.zip"
    msi = unzip(package, tmp_path)
    readme = (tmp_path / "README.txt").read_text()
    for text in (
        "Unzip the archive",
        "Run hwragent.msi as Administrator",
        "Microsoft .NET Framework 4.0",
        "Python 3.11",
        "does not ship a service wrapper",
    ):
        assert text in readme

    tables = run("msiinfo", "tables", msi).stdout.split()
    assert {"File", "Component", "Directory", "ServiceInstall"} <= set(tables)
    names = {row[2] for row in msi_rows(msi, "File")}
    assert {"agent.json", "cli.py", "__main__.py", "hwragent.cmd", "hwragent-start.cmd"} <= names
    assert "hwragent-service.xml" in names
    assert msi_rows(msi, "ServiceInstall") == []  # no service host, no broken service
    directories = {row[0]: (row[1], row[2]) for row in msi_rows(msi, "Directory")}
    assert directories["INSTALLDIR"] == ("ACURADIR", "hwragent")
    assert directories["ACURADIR"] == ("ProgramFiles64Folder", "Acura")
    properties = dict(row[:2] for row in msi_rows(msi, "Property"))
    assert properties["ProductVersion"] == VERSION
    assert "Privileged" in {row[0] for row in msi_rows(msi, "LaunchCondition")}

    out = tmp_path / "extracted"
    run("msiextract", "-C", out, msi)
    installed = out / "Acura/hwragent"
    assert json.loads((installed / "agent.json").read_text()) == package_config("windows")
    assert (installed / "agent/cli.py").read_bytes() == (
        Path(agent.__file__).parent / "cli.py"
    ).read_bytes()
    service_xml = (installed / "hwragent-service.xml").read_text()
    assert "<id>hwragent</id>" in service_xml
    assert "hwragent-start.cmd" in service_xml


def test_windows_service_host_installs_and_starts_the_service(built, tmp_path):
    host = tmp_path / "WinSW-NET4.exe"
    host.write_bytes(b"MZ stand-in for the WinSW binary")
    package = built("msi-service", PackageSpec("windows"), windows_service_host=host)
    msi = unzip(package, tmp_path / "zip")
    files = {row[0]: row[2] for row in msi_rows(msi, "File")}
    assert files["f_hwragent_service.exe"] == "hwragent-service.exe"
    [service] = msi_rows(msi, "ServiceInstall")
    # Name, ServiceType 16 (own process), StartType 2 (automatic), on the exe's component
    assert (service[1], service[3], service[4], service[11]) == (
        "hwragent",
        "16",
        "2",
        "c_hwragent_service.exe",
    )
    [control] = msi_rows(msi, "ServiceControl")
    assert control[1] == "hwragent"
    assert int(control[2]) & 0x01  # start on install
    assert int(control[2]) & 0x80  # delete on uninstall
    assert "installs the Windows service" in (tmp_path / "zip/README.txt").read_text()


def test_windows_component_guids_are_stable(built, tmp_path):
    first = unzip(built("msi", PackageSpec("windows")), tmp_path / "a")
    again = build_package(PackageSpec("windows"), package_config("windows"), tmp_path / "b")
    second = unzip(again, tmp_path / "c")
    assert msi_rows(first, "Component") == msi_rows(second, "Component")
    assert msi_rows(first, "Property") == msi_rows(second, "Property")  # ProductCode too


# -- appliances -------------------------------------------------------------------------------


def test_vmware_appliance_archive_with_static_network(built, tmp_path):
    archive = built("vmware", PackageSpec("vmware", network=STATIC))
    top = "hvragent-vmware-appliance"
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert all(m.uid == 0 and m.mtime == members[top].mtime for m in members.values())
        for name, mode in {
            "install.sh": 0o755,
            "README.txt": 0o644,
            "files/etc/hvragent/agent.json": 0o600,
            "files/etc/NetworkManager/system-connections/hvragent.nmconnection": 0o600,
            "files/etc/systemd/system/hvragent.service": 0o644,
            "files/usr/bin/acura-agent": 0o755,
            "files/opt/hvragent/bin/hvragent-start": 0o755,
            "files/opt/hvragent/agent/daemon.py": 0o644,
            "files/opt/hvragent/agent/vmware/job.py": 0o644,
            "files/opt/hvragent/agent/vmware/datastore.py": 0o644,
            "files/opt/hvragent/agent/requirements-vmware.txt": 0o644,
        }.items():
            assert members[f"{top}/{name}"].mode == mode, name
        tar.extractall(tmp_path, filter="data")
    files = tmp_path / top / "files"
    keyfile = (files / "etc/NetworkManager/system-connections/hvragent.nmconnection").read_text()
    assert "[ipv4]\nmethod=manual\naddress1=172.22.6.230/16,172.22.1.2\n" in keyfile
    assert "dns=1.1.1.1;2.2.2.2;\n" in keyfile
    assert "type=ethernet" in keyfile and "id=hvragent" in keyfile
    config = json.loads((files / "etc/hvragent/agent.json").read_text())
    assert config["enrollment_token"] == "acet_pkgtest.s3cr3t"
    assert config["network"]["gateway"] == "172.22.1.2"
    assert config["network"]["dns"] == ["1.1.1.1", "2.2.2.2"]
    readme = (tmp_path / top / "README.txt").read_text()
    for text in (
        "NOT a bootable OVA",
        "each ESXi host",
        "2 CPUs and 4 GB RAM",
        '"hvragent" extraConfig parameter',
        "the TUI",
        "NetworkManager",
        "a minimal, hardened OS",
        "static, address 172.22.6.230 netmask 255.255.0.0",
    ):
        assert text in readme, text


def test_appliance_install_script_installs_into_a_root(built, tmp_path):
    archive = built("vmware", PackageSpec("vmware", network=STATIC))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / "root"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HVRAGENT_ROOT": str(root)}
    installer = tmp_path / "hvragent-vmware-appliance/install.sh"
    done = subprocess.run([installer], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (root / "etc/hvragent/agent.json").stat().st_mode & 0o777 == 0o600
    assert (root / "etc/hvragent").stat().st_mode & 0o777 == 0o700
    keyfile = root / "etc/NetworkManager/system-connections/hvragent.nmconnection"
    assert keyfile.stat().st_mode & 0o777 == 0o600
    assert (root / "etc/systemd/system/hvragent.service").is_file()
    version = subprocess.run(
        [root / "usr/bin/acura-agent", "--version"],
        env={**env, "ACURA_AGENT_HOME": str(root / "opt/hvragent")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert version.stdout.strip() == f"acura-agent {VERSION}"


def test_vmware_appliance_install_refuses_a_python_without_pyvmomi(built, tmp_path):
    """The VMware job runner needs pyVmomi: install.sh says how to get it, installs nothing."""
    archive = built("vmware", PackageSpec("vmware", network=STATIC))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "pyVmomi.py").write_text("raise ImportError('not installed here')\n")
    shims = tmp_path / "bin"
    shims.mkdir()
    shim = shims / "python3"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH={hide} exec {sys.executable} "$@"\n')
    shim.chmod(0o755)
    root = tmp_path / "root"
    env = {"PATH": f"{shims}:/usr/bin:/bin", "HVRAGENT_ROOT": str(root)}
    installer = tmp_path / "hvragent-vmware-appliance/install.sh"
    done = subprocess.run([installer], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "needs the Python module pyVmomi" in done.stderr
    assert "requirements-vmware.txt" in done.stderr
    assert not (root / "etc/hvragent").exists()


def test_ovirt_appliance_with_dhcp_and_reproducible_bytes(built, tmp_path):
    archive = built("ovirt", PackageSpec("ovirt"))
    assert archive.name == "hvragent-ovirt-appliance.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert not any("/agent/vmware/" in name for name in names)
        top = "hvragent-ovirt-appliance/files/opt/hvragent/agent"
        assert f"{top}/ovirt/job.py" in names and f"{top}/requirements-ovirt.txt" in names
    top = "hvragent-ovirt-appliance"
    with tarfile.open(archive) as tar:
        keyfile = tar.extractfile(
            f"{top}/files/etc/NetworkManager/system-connections/hvragent.nmconnection"
        ).read()
        readme = tar.extractfile(f"{top}/README.txt").read().decode()
    assert b"[ipv4]\nmethod=auto\n" in keyfile
    for text in ("NOT a bootable RAW", "discovery level", "4 GB RAM", "10 GB disk"):
        assert text in readme, text
    again = build_package(PackageSpec("ovirt"), package_config("ovirt"), tmp_path)
    assert again.read_bytes() == archive.read_bytes()
