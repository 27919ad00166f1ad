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

ensure_venv() {
    requirements="$1"
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
