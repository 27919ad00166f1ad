"""``python -m agent``. Checks the interpreter first, so a machine with an old Python or
without zstandard gets one clear line (and the usual JSON error object, exit 2) instead of
a traceback from deep inside an import."""

import json
import platform
import sys

MINIMUM = (3, 11)
ZSTANDARD_HINT = (
    "the agent needs the Python module zstandard: apt-get install python3-zstandard "
    "(Debian/Ubuntu), dnf install python3-zstandard (Fedora, EPEL), or "
    f"{sys.executable} -m pip install zstandard"
)


def _refuse(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    print(json.dumps({"error": message, "exit_code": 2}), flush=True)
    sys.exit(2)


if sys.version_info < MINIMUM:
    _refuse(
        f"the agent needs Python {'.'.join(map(str, MINIMUM))} or newer; "
        f"{sys.executable} is {platform.python_version()}"
    )
try:
    import zstandard  # noqa: F401
except ImportError:
    _refuse(ZSTANDARD_HINT)

from .cli import main  # noqa: E402

sys.exit(main())
