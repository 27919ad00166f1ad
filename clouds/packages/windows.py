"""The Windows agent package: ``hwragent.zip`` holding ``hwragent.msi`` (built by wixl from
a generated WiX source) and a README.txt with the install steps.

The MSI installs under ``ProgramFiles64Folder\\Acura\\hwragent\\``: the agent sources, the
package config ``agent.json``, ``hwragent.cmd`` (the launcher), ``hwragent-start.cmd``
(enroll once, then run) and ``hwragent-service.xml`` (the service definition, WinSW format).

The service: wixl supports ``ServiceInstall``/``ServiceControl`` (checked with wixl 0.101),
but the service's executable is the component's key file and must answer the Service Control
Manager; python.exe does not, and no wrapper binary can be built here. So by default the MSI
ships the WinSW definition and the README says how to add WinSW; given a wrapper executable
(``service_host``, WinSW for .NET 4, matching the product's .NET Framework 4.0 requirement)
the MSI ships it as ``hwragent-service.exe`` with ``ServiceInstall`` + ``ServiceControl``, so
installing registers and starts the service.

Determinism: component GUIDs are uuid5 of the installed path (stable across rebuilds and
versions, as Windows Installer's component rules want), the ProductCode is uuid5 of the
content. wixl itself stamps a random package code and the build time into the summary
information stream, so two MSI builds differ in those bytes only (and so does the zip).
"""

from __future__ import annotations

import hashlib
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from .staging import (
    AGENT_VERSION,
    PackageBuildError,
    Stage,
    config_json,
    render,
    run_tool,
    write_zip,
)

NAMESPACE = uuid.UUID("5b0a3f1e-6c1d-4f4e-9a57-3f1f0e2d7a10")  # hwragent's uuid5 namespace
UPGRADE_CODE = str(uuid.uuid5(NAMESPACE, "hwragent:upgrade-code")).upper()
WIX_NS = "http://schemas.microsoft.com/wix/2006/wi"
SERVICE = "hwragent"
SERVICE_EXE = "hwragent-service.exe"
PRODUCT_NAME = "Acura replication agent"


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def stage_files(stage: Stage, config: dict, service_host: Path | None) -> list[str]:
    """Write the installed files; returns their paths relative to the install folder."""
    server = " ".join(str(config.get("server", "")).split())
    customer = (config.get("customer") or {}).get("slug") or "-"
    service = render("windows/service-msi.txt" if service_host else "windows/service-manual.txt")
    readme = render(
        "windows/README.txt",
        version=AGENT_VERSION,
        server=server,
        customer=customer,
        service=service.strip(),
    )
    stage.copy_agent("agent", crlf=True)
    stage.write("agent.json", config_json(config))
    stage.write("README.txt", _crlf(readme))
    stage.write("hwragent.cmd", _crlf(render("windows/hwragent.cmd")))
    stage.write("hwragent-start.cmd", _crlf(render("windows/hwragent-start.cmd")))
    stage.write(
        "hwragent-service.xml", _crlf(render("windows/hwragent-service.xml", version=AGENT_VERSION))
    )
    if service_host is not None:
        if not Path(service_host).is_file():
            raise PackageBuildError(f"the Windows service host {service_host} does not exist")
        stage.write(SERVICE_EXE, Path(service_host).read_bytes())
    stage.settle()
    return [str(p.relative_to(stage.root).as_posix()) for p in stage.files()]


def _ident(prefix: str, relative: str) -> str:
    """An MSI identifier (letters, digits, _ and ., at most 72) for an installed path."""
    text = prefix + re.sub(r"[^A-Za-z0-9_.]", "_", relative)
    if len(text) > 72:
        text = text[:55] + "_" + hashlib.sha256(relative.encode()).hexdigest()[:16]
    return text


def _guid(relative: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"hwragent:component:{relative}")).upper()


def _max_exclusive(version: str) -> str:
    """The version just above ``version`` (wixl ignores IncludeMaximum, so an exclusive bound
    one build higher makes the same version upgradable: another download replaces it)."""
    parts = [int(p) for p in version.split(".")[:3]] + [0] * 3
    return f"{parts[0]}.{parts[1]}.{parts[2] + 1}"


def wix_source(stage: Stage, files: list[str], *, with_service: bool) -> str:
    digest = hashlib.sha256()
    for relative in files:
        digest.update(relative.encode() + b"\0" + (stage.root / relative).read_bytes())
    product_code = str(uuid.uuid5(NAMESPACE, f"hwragent:product:{digest.hexdigest()}")).upper()

    wix = ET.Element("Wix", xmlns=WIX_NS)
    product = ET.SubElement(
        wix,
        "Product",
        Id=product_code,
        Name=PRODUCT_NAME,
        Language="1033",
        Version=AGENT_VERSION,
        Manufacturer="Acura",
        UpgradeCode=UPGRADE_CODE,
    )
    ET.SubElement(
        product,
        "Package",
        InstallerVersion="500",
        Compressed="yes",
        InstallScope="perMachine",
        Description=f"{PRODUCT_NAME} (hwragent) {AGENT_VERSION}",
        Comments="Replicates this machine's disks into the Acura portal.",
    )
    upgrade = ET.SubElement(product, "Upgrade", Id=UPGRADE_CODE)
    ET.SubElement(
        upgrade,
        "UpgradeVersion",
        Minimum="0.0.0",
        IncludeMinimum="yes",
        Maximum=_max_exclusive(AGENT_VERSION),
        Property="OLDERFOUND",
    )
    ET.SubElement(
        upgrade,
        "UpgradeVersion",
        Minimum=_max_exclusive(AGENT_VERSION),
        IncludeMinimum="yes",
        OnlyDetect="yes",
        Property="NEWERFOUND",
    )
    condition = ET.SubElement(
        product, "Condition", Message="A newer version of hwragent is already installed."
    )
    condition.text = "NOT NEWERFOUND"
    admin = ET.SubElement(
        product, "Condition", Message="hwragent must be installed with Administrator privileges."
    )
    admin.text = "Privileged"
    sequence = ET.SubElement(product, "InstallExecuteSequence")
    ET.SubElement(sequence, "RemoveExistingProducts", After="InstallValidate")
    ET.SubElement(product, "Media", Id="1", Cabinet="hwragent.cab", EmbedCab="yes")

    target = ET.SubElement(product, "Directory", Id="TARGETDIR", Name="SourceDir")
    program_files = ET.SubElement(target, "Directory", Id="ProgramFiles64Folder")
    acura = ET.SubElement(program_files, "Directory", Id="ACURADIR", Name="Acura")
    install = ET.SubElement(acura, "Directory", Id="INSTALLDIR", Name="hwragent")
    folders = {"": install}
    components = []
    for relative in files:
        folder, _, name = relative.rpartition("/")
        if folder not in folders:
            folders[folder] = ET.SubElement(
                folders[""], "Directory", Id=_ident("d_", folder), Name=folder
            )
        component_id = _ident("c_", relative)
        component = ET.SubElement(
            folders[folder], "Component", Id=component_id, Guid=_guid(relative), Win64="yes"
        )
        ET.SubElement(
            component,
            "File",
            Id=_ident("f_", relative),
            Name=name,
            Source=relative,  # wixl resolves sources from its working directory
            KeyPath="yes",
        )
        if with_service and relative == SERVICE_EXE:
            _service(component)
        components.append(component_id)

    feature = ET.SubElement(product, "Feature", Id="Main", Title="Replication agent", Level="1")
    for component_id in components:
        ET.SubElement(feature, "ComponentRef", Id=component_id)
    ET.indent(wix)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(wix, encoding="unicode")


def _service(component: ET.Element) -> None:
    ET.SubElement(
        component,
        "ServiceInstall",
        Id="hwragent_service",
        Name=SERVICE,
        DisplayName=f"{PRODUCT_NAME} (hwragent)",
        Description="Replicates this machine's disks into the Acura portal.",
        Type="ownProcess",
        Start="auto",
        ErrorControl="normal",
        Account="LocalSystem",
    )
    ET.SubElement(
        component,
        "ServiceControl",
        Id="hwragent_service_control",
        Name=SERVICE,
        Start="install",
        Stop="both",
        Remove="uninstall",
        Wait="yes",
    )


def build_zip(config: dict, work: Path, target: Path, *, service_host: Path | None) -> None:
    stage = Stage(work / "files")
    files = stage_files(stage, config, service_host)
    source = work / "hwragent.wxs"
    source.write_text(wix_source(stage, files, with_service=service_host is not None))
    msi = work / "hwragent.msi"
    done = run_tool(["wixl", "--arch", "x64", "--output", str(msi), str(source)], cwd=stage.root)
    # wixl only warns about WiX attributes it does not know and leaves them out of the MSI:
    # a silently dropped attribute is a broken installer, so it is an error here.
    if "WARNING" in done.stderr or "CRITICAL" in done.stderr:
        raise PackageBuildError(f"wixl ignored part of the WiX source: {done.stderr[-2000:]}")
    write_zip(target, [("hwragent.msi", msi), ("README.txt", stage.root / "README.txt")])
