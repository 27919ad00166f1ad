#!/bin/sh
# install.sh: install the Acura @TITLE@ replication agent (hvragent) on this agent VM.
# Run it as root on a minimal Linux VM with systemd, python3 >= 3.11, python3-zstandard and
# NetworkManager. Options: --no-network keeps the VM's current network settings.
# HVRAGENT_ROOT=DIR installs into DIR instead of / (image builds, tests) and starts nothing.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
FILES="$HERE/files"
ROOT="${HVRAGENT_ROOT:-}"
NETWORK=1
for arg in "$@"; do
    case "$arg" in
        --no-network) NETWORK=0 ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$ROOT" ] && [ "$(id -u)" != "0" ]; then
    echo "install.sh: run as root (sudo ./install.sh)" >&2
    exit 1
fi
PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do  # as the acura-agent launcher
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys, zstandard; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        PYTHON="$candidate"
        break
    fi
done
if [ -z "$PYTHON" ]; then
    echo "install.sh: the agent needs python3 >= 3.11 with zstandard:" >&2
    echo "  Debian/Ubuntu: apt-get install python3 python3-zstandard" >&2
    echo "  RHEL 9 family: dnf install python3.11 && python3.11 -m pip install zstandard" >&2
    exit 1
fi
REQUIRES="@REQUIRES@"  # the platform's Python modules beyond zstandard (pyVmomi, ovirtsdk4)
for module in $REQUIRES; do
    if ! "$PYTHON" -c "import $module" 2>/dev/null; then
        echo "install.sh: the agent needs the Python module $module for @TITLE@:" >&2
        echo "  $PYTHON -m pip install -r $FILES/opt/hvragent/agent/@REQUIREMENTS@" >&2
        exit 1
    fi
done

install -d -m 0755 "$ROOT/opt/hvragent/bin" "$ROOT/usr/bin" "$ROOT/etc/systemd/system"
rm -rf "$ROOT/opt/hvragent/agent"
cp -R "$FILES/opt/hvragent/agent" "$ROOT/opt/hvragent/agent"
install -m 0755 "$FILES/opt/hvragent/bin/hvragent-start" "$ROOT/opt/hvragent/bin/hvragent-start"
install -m 0755 "$FILES/usr/bin/acura-agent" "$ROOT/usr/bin/acura-agent"
install -m 0644 "$FILES/etc/systemd/system/hvragent.service" \
    "$ROOT/etc/systemd/system/hvragent.service"
install -d -m 0700 "$ROOT/etc/hvragent"
install -m 0644 "$FILES/etc/hvragent/network.json" "$ROOT/etc/hvragent/network.json"
CONFIG="$ROOT/etc/hvragent/agent.json"
if [ -f "$CONFIG" ] && ! grep -q '"enrollment_token"' "$CONFIG"; then
    echo "install.sh: $CONFIG is enrolled already; kept (delete it to enroll again)"
else
    install -m 0600 "$FILES/etc/hvragent/agent.json" "$CONFIG"
fi
if [ "$NETWORK" = "1" ]; then
    # NetworkManager ignores a keyfile that others can read.
    install -d -m 0700 "$ROOT/etc/NetworkManager/system-connections"
    install -m 0600 "$FILES/etc/NetworkManager/system-connections/hvragent.nmconnection" \
        "$ROOT/etc/NetworkManager/system-connections/hvragent.nmconnection"
fi

if [ -n "$ROOT" ] || [ ! -d /run/systemd/system ]; then
    echo "hvragent installed under ${ROOT:-/}; start it with: systemctl enable --now hvragent"
    exit 0
fi
if [ "$NETWORK" = "1" ]; then
    if command -v nmcli >/dev/null 2>&1; then
        nmcli connection reload
        nmcli connection up hvragent || echo "install.sh: could not activate the hvragent connection: check it with nmtui" >&2
    else
        echo "install.sh: NetworkManager (nmcli) is missing: configure the network as /etc/hvragent/network.json says" >&2
    fi
fi
systemctl daemon-reload
systemctl enable hvragent.service
systemctl restart hvragent.service
echo "hvragent installed and started: systemctl status hvragent; journalctl -u hvragent"
