"""Settings come from the environment; production settings pass `check --deploy`."""

import os
from pathlib import Path

import pytest

from tests.e2e_support import manage

ROOT = Path(__file__).resolve().parents[2]


def run_manage(args, extra_env, tmp_path):
    """manage.py in a fresh process with the real settings module and only ``extra_env``
    on top of a clean environment (no test secret key, no DEBUG)."""
    dropped = {
        "DEBUG",
        "ACURA_HTTPS",
        "SECRET_KEY",
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
    }
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update({"ACURA_DATA_DIR": str(tmp_path / "data"), **extra_env})
    return manage(args, env)


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run_manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "SECRET_KEY": "p" * 20 + "-production-secret-key-with-enough-entropy-9f8e7d",
            "DEBUG": "0",
            "ACURA_HTTPS": "1",
            "ALLOWED_HOSTS": "portal.example.com",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secret_key_is_generated_once_and_kept(tmp_path):
    script = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = run_manage(["shell", "-v", "0", "-c", script], {}, tmp_path)
    second = run_manage(["shell", "-v", "0", "-c", script], {}, tmp_path)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50
    assert key == second.stdout.strip()
    key_file = tmp_path / "data" / "secret_key"
    assert key_file.read_text().strip() == key
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_defaults_are_embedded(tmp_path):
    script = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG)"
    )
    result = run_manage(
        ["shell", "-v", "0", "-c", script],
        {"DATABASE_URL": "", "CELERY_BROKER_URL": ""},
        tmp_path,
    )
    # Empty variables count as unset for the URLs: dj-database-url would fail on "".
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "filesystem://localhost//",
        "False",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE='Mars/Olympus' is not an IANA time zone"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL is not a usable database URL"),
        ({"ACURA_CHUNK_SIZE": "1000000"}, "ACURA_CHUNK_SIZE=1000000 must be a power of two"),
        ({"ACURA_CHUNK_SIZE": "big"}, "ACURA_CHUNK_SIZE='big' is not an integer"),
    ],
)
def test_bad_environment_values_stop_startup_with_a_clear_message(tmp_path, env, message):
    result = run_manage(["check"], env, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
