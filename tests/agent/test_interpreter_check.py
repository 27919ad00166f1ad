"""``python -m agent`` on a machine that cannot run it says why in one line (and the usual
JSON error object), exit 2, instead of an import traceback."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_agent(prelude: str) -> subprocess.CompletedProcess:
    code = f"import sys, runpy\n{prelude}\nrunpy.run_module('agent', run_name='__main__')"
    return subprocess.run(
        [sys.executable, "-c", code, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_zstandard_is_named_with_the_install_commands():
    done = run_agent("sys.modules['zstandard'] = None  # as if it were not installed")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "apt-get install python3-zstandard" in done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["exit_code"] == 2


def test_an_old_python_is_named():
    done = run_agent("sys.version_info = (3, 9, 18)")
    assert done.returncode == 2
    assert "needs Python 3.11 or newer" in done.stderr


def test_a_good_interpreter_gets_the_cli():
    done = run_agent("")
    assert done.returncode == 0 and "enroll" in done.stdout
