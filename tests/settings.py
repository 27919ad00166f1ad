"""Test settings: the real settings, plus what makes tests fast and self-contained.

DATABASE_URL and CELERY_BROKER_URL still come from the environment, so the same suite runs
on SQLite + filesystem broker and on PostgreSQL + Redis (see .ci/run).
"""

import os
import tempfile

os.environ.setdefault("ACURA_DATA_DIR", tempfile.mkdtemp(prefix="acura-test-"))
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-use-0123456789abcdef")

from acura_portal.settings import *  # noqa: F403
from acura_portal.settings import STORAGES

# No collectstatic in tests: serve and reference unhashed files.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (whitenoise warns when missing)

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file, like the embedded installation uses (WAL, busy timeout), rather than SQLite's
    # shared in-memory database, whose table locks fail threads instead of waiting.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}  # noqa: F405
