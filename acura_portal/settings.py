"""Django settings, read from environment variables.

The defaults give the embedded installation (SQLite, kombu's filesystem broker, local data
folder); production sets DATABASE_URL, CELERY_BROKER_URL and friends. See README.md.
"""

from pathlib import Path
from zoneinfo import available_timezones

import dj_database_url

from .env import ConfigError, env_bool, env_int, env_list, env_str, persistent_secret
from .logging import stdout_logging

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = Path(env_str("ACURA_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env_str("SECRET_KEY") or persistent_secret(DATA_DIR / "secret_key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

TIME_ZONE = env_str("TIME_ZONE", "UTC")
if TIME_ZONE not in available_timezones():
    raise ConfigError(f"TIME_ZONE={TIME_ZONE!r} is not an IANA time zone name")
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "tenants",
    "protection",
    "storage",
    "clouds",
    "acura_portal",
]

MIDDLEWARE = [
    "acura_portal.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "acura_portal.urls"
WSGI_APPLICATION = "acura_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.tenancy",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'acura.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except Exception as exc:  # dj_database_url raises several types for a bad URL
    raise ConfigError(f"DATABASE_URL is not a usable database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file: WAL lets readers run beside a writer,
    # IMMEDIATE transactions avoid "database is locked" on lock upgrades.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------
LOGIN_URL = "tenants:login"
LOGIN_REDIRECT_URL = "tenants:home"
LOGOUT_REDIRECT_URL = "tenants:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Static files: served by the app itself (DR sites are often offline: no CDN) -------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- HTTPS (production behind TLS) -----------------------------------------------------
# ACURA_HTTPS=1 says the portal is reached over https (directly or via a TLS proxy that
# sets X-Forwarded-Proto); the embedded quick start on http://127.0.0.1:8000 leaves it off.
HTTPS = env_bool("ACURA_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("ACURA_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("ACURA_HSTS_SECONDS", 31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and env_bool("ACURA_HSTS_PRELOAD", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "acura_portal.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Acura Portal API",
    "DESCRIPTION": "Customer and replication-agent API of Acura Portal.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI / ReDoc assets ship in drf-spectacular-sidecar and are served locally.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "SnapshotStateEnum": "storage.models.SnapshotState",
        "SessionStateEnum": "storage.models.SessionState",
        "JobStateEnum": "protection.models.JobState",
        "JobResultStateEnum": "clouds.api.serializers.agent.RESULT_STATES",
        "PowerActionEnum": "clouds.models.PowerAction",
    },
}

# --- Snapshot store ---------------------------------------------------------------------
# Where chunks and indexes live: empty = the data folder; file:///path; s3://bucket/prefix?
# endpoint=URL&region=R (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
STORE_URL = env_str("ACURA_STORE_URL")
STORE_FSYNC = env_bool("ACURA_STORE_FSYNC", True)
# Comma-separated base64 AES-256 master keys, current first: customer data keys are wrapped
# with it and chunks encrypted. Empty: chunks are stored unencrypted.
STORE_MASTER_KEYS = env_str("ACURA_MASTER_KEYS")
# 256 KiB: the replication bench's 1 % change in 256 KiB runs crosses the wire at 1.36x its
# compressed size (1 MiB chunks: 2.71x; the target is <= 1.5x), at 4x the catalog rows and
# full-index bytes of 1 MiB chunks (bench/README.md has both studies). Disks keep the chunk
# size of their first snapshot, so changing this only affects new disks.
STORE_CHUNK_SIZE = env_int("ACURA_CHUNK_SIZE", 256 * 1024)
if not (
    64 * 1024 <= STORE_CHUNK_SIZE <= 64 * 1024 * 1024
    and STORE_CHUNK_SIZE & (STORE_CHUNK_SIZE - 1) == 0
):
    raise ConfigError(
        f"ACURA_CHUNK_SIZE={STORE_CHUNK_SIZE} must be a power of two from 65536 (64 KiB) "
        f"to 67108864 (64 MiB)"
    )
STORE_GC_GRACE_HOURS = env_int("ACURA_GC_GRACE_HOURS", 24)
STORE_SESSION_EXPIRY_HOURS = env_int("ACURA_SESSION_EXPIRY_HOURS", 48)
STORE_MAX_UPLOAD_BYTES = env_int("ACURA_MAX_UPLOAD_BYTES", 64 * 1024 * 1024)
# A raw full index is 32 bytes a chunk: 1 GiB covers an 8 TiB disk at 256 KiB chunks.
STORE_MAX_INDEX_BYTES = env_int("ACURA_MAX_INDEX_BYTES", 1024 * 1024 * 1024)
STORE_MAX_DIGESTS_PER_QUERY = env_int("ACURA_MAX_DIGESTS_PER_QUERY", 10000)
# Materialized indexes kept in each web process (restores and incremental commits reuse them).
STORE_INDEX_CACHE_BYTES = env_int("ACURA_INDEX_CACHE_BYTES", 256 * 1024 * 1024)

# --- Agents and replication jobs ----------------------------------------------------------
# How often agents send a heartbeat (told to them at enroll and in every heartbeat answer);
# an agent is marked offline after AGENT_OFFLINE_AFTER_SECONDS without one.
AGENT_HEARTBEAT_SECONDS = env_int("ACURA_AGENT_HEARTBEAT_SECONDS", 30)
AGENT_OFFLINE_AFTER_SECONDS = env_int(
    "ACURA_AGENT_OFFLINE_AFTER_SECONDS", 3 * AGENT_HEARTBEAT_SECONDS
)
# A running job without progress for this long is failed (the agent died or lost the network).
JOB_STUCK_MINUTES = env_int("ACURA_JOB_STUCK_MINUTES", 30)
# A queued job no agent took for this long is failed (the agent is gone or offline).
JOB_QUEUE_TIMEOUT_HOURS = env_int("ACURA_JOB_QUEUE_TIMEOUT_HOURS", 24)
# How often beat looks for due replications (seconds).
DISPATCH_SECONDS = env_int("ACURA_DISPATCH_SECONDS", 60)
# Enrollment tokens' default lifetime (hours) and agent events kept (days).
ENROLLMENT_TOKEN_HOURS = env_int("ACURA_ENROLLMENT_TOKEN_HOURS", 24)
AGENT_EVENTS_KEEP_DAYS = env_int("ACURA_AGENT_EVENTS_KEEP_DAYS", 30)
# Register new platform: how long a cloud's connection check may take, how long a download
# link (and the enrollment token inside its package) lives, and how many agents may enroll
# from one package (one per ESXi host / oVirt unit / protected machine).
CLOUD_CHECK_TIMEOUT_SECONDS = env_int("ACURA_CLOUD_CHECK_TIMEOUT_SECONDS", 15)
CLOUD_DISCOVERY_SECONDS = env_int("ACURA_CLOUD_DISCOVERY_SECONDS", 300)
DOWNLOAD_LINK_HOURS = env_int("ACURA_DOWNLOAD_LINK_HOURS", 72)
DOWNLOAD_LINK_AGENTS = env_int("ACURA_DOWNLOAD_LINK_AGENTS", 100)
# The URL packaged agents reach the portal at when a link is made outside a web request
# (``create_download_link``), and the portal's TLS certificate whose SHA-256 they pin.
PUBLIC_URL = env_str("ACURA_PUBLIC_URL", "http://127.0.0.1:8000")
TLS_CERT_FILE = env_str("ACURA_TLS_CERT_FILE")
# A Windows service wrapper (WinSW-NET4.exe) to put into hwragent.msi, which then installs and
# starts the agent as a service; without it the MSI ships a WinSW-style service definition.
WINDOWS_SERVICE_HOST = env_str("ACURA_WINDOWS_SERVICE_HOST")
PACKAGE_CACHE_DIR = Path(env_str("ACURA_PACKAGE_CACHE_DIR", str(DATA_DIR / "packages")))

# --- Celery -----------------------------------------------------------------------------
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://localhost//"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
    }
# Several installations (or test runs) can share one broker: each uses its own queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("ACURA_QUEUE", "acura")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Logging: one line format everywhere, with the request id ---------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = stdout_logging(
    LOG_LEVEL,
    {"django.server": {"level": "WARNING"}, "django.db.backends": {"level": "INFO"}},
)
