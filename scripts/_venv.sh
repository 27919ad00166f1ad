# Sourced by scripts/quickstart and scripts/test: finds Python 3.11+, makes .venv, installs
# the given requirements file. Installs Debian's python3-venv when the venv module is missing
# (fresh Debian/Ubuntu machines ship Python without it).
set -eu

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "Python 3.11 or newer is needed (apt-get install python3)." >&2
    return 1
}

# Debian packages the server needs beyond Python: a C compiler and libxml2's headers to build
# ovirt-engine-sdk-python (published only as source), and the tools that build agent packages
# on demand (dpkg-deb for .deb, rpmbuild for .rpm, wixl for the Windows .msi).
ensure_system_packages() {
    missing=""
    command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
    [ -f /usr/include/libxml2/libxml/parser.h ] || missing="$missing libxml2-dev"
    command -v dpkg-deb >/dev/null 2>&1 || missing="$missing dpkg"
    command -v rpmbuild >/dev/null 2>&1 || missing="$missing rpm"
    command -v wixl >/dev/null 2>&1 || missing="$missing wixl"
    if [ -n "$missing" ]; then
        echo "Installing system packages:$missing (needs root)" >&2
        as_root apt-get update -q
        # shellcheck disable=SC2086
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
    fi
}

ensure_venv() {
    requirements="$1"
    ensure_system_packages
    if [ ! -x .venv/bin/python ]; then
        py="$(find_python)"
        if ! "$py" -m venv .venv 2>/dev/null; then
            rm -rf .venv
            echo "Installing python3-venv (needs root)..." >&2
            as_root apt-get update -q
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv \
                "$(basename "$py")-venv" 2>/dev/null ||
                as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
            "$py" -m venv .venv
        fi
        .venv/bin/python -m pip install -q --upgrade pip
    fi
    .venv/bin/python -m pip install -q -r "$requirements"
}
