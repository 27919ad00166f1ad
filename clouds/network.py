"""Agent network settings (VMware appliance, step 3): DHCP, or a static address.

Validated here once, for the wizard's form, the download-link service and the command alike,
so the package never carries an address the appliance could not configure.
"""

import ipaddress

from django.core.exceptions import ValidationError

MODES = ("dhcp", "static")
MAX_DNS = 8


def _address(value, field: str, errors: dict):
    text = str(value or "").strip()
    if not text:
        errors[field] = "This field is required for static settings."
        return None
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        errors[field] = f"“{text}” is not an IPv4 address (for example 172.22.6.230)."
        return None


def _netmask(value, errors: dict):
    text = str(value or "").strip()
    if not text:
        errors["netmask"] = "This field is required for static settings."
        return None
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError:
        errors["netmask"] = f"“{text}” is not a subnet mask (for example 255.255.0.0)."
        return None


def dns_split(value) -> list[str]:
    """The DNS field's comma-separated list (a list passes through), blanks dropped."""
    parts = value if isinstance(value, (list, tuple)) else str(value or "").split(",")
    return [str(part).strip() for part in parts if str(part).strip()]


def network_clean(data: dict | None) -> dict:
    """``{"mode": "dhcp"}`` or ``{"mode": "static", "ip", "netmask", "gateway", "dns"}``
    normalized; ``ValidationError`` naming each bad field otherwise."""
    data = dict(data or {})
    mode = str(data.get("mode") or "dhcp").strip().lower()
    if mode not in MODES:
        raise ValidationError({"mode": "Choose DHCP or Static."})
    if mode == "dhcp":
        return {"mode": "dhcp"}
    errors: dict = {}
    ip = _address(data.get("ip"), "ip", errors)
    prefix = _netmask(data.get("netmask"), errors)
    gateway = _address(data.get("gateway"), "gateway", errors)
    dns = []
    for text in dns_split(data.get("dns")):
        try:
            dns.append(str(ipaddress.IPv4Address(text)))
        except ValueError:
            errors["dns"] = f"“{text}” is not an IPv4 address; separate servers with commas."
            break
    if not dns and "dns" not in errors:
        errors["dns"] = "Give at least one DNS server (several separated by commas)."
    elif len(dns) > MAX_DNS:
        errors["dns"] = f"At most {MAX_DNS} DNS servers."
    if ip is not None and prefix is not None:
        network = ipaddress.IPv4Network(f"{ip}/{prefix}", strict=False)
        if prefix < 31 and ip in (network.network_address, network.broadcast_address):
            errors["ip"] = f"{ip} is the network or broadcast address of {network}."
        elif gateway is not None and gateway not in network:
            errors["gateway"] = f"The gateway {gateway} is outside the agent's subnet {network}."
        elif gateway is not None and gateway == ip:
            errors["gateway"] = "The gateway cannot be the agent's own address."
    if errors:
        raise ValidationError(errors)
    netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)
    return {
        "mode": "static",
        "ip": str(ip),
        "netmask": netmask,
        "gateway": str(gateway),
        "dns": dns,
    }
