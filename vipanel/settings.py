"""vipanel settings: everything that differs between machines comes from the environment.

Bad values fail loudly at start; nothing silently falls back to an insecure choice in production.
See README.md, "Production settings", for the variables.
"""

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: use 1/0, true/false, yes/no or on/off")


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: must be a whole number") from None


def env_list(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# Runtime state (the SQLite file, generated keys) lives here unless told otherwise.
DATA_DIR = Path(os.environ.get("VIPANEL_DATA_DIR", BASE_DIR / "data"))


def env_secret(name, generate):
    """A secret from NAME, from the file named by NAME_FILE, or generated once into DATA_DIR.

    Generating keeps `make run` zero set-up; production passes NAME or NAME_FILE (README).
    """
    if os.environ.get(name):
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as e:
            raise ImproperlyConfigured(
                f"{name}_FILE={path!r}: cannot read it ({e.strerror})"
            ) from None
    path = DATA_DIR / name.lower()
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        # Created with 0600 from the start, so the secret is never readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate())
    return path.read_text().strip()


DEBUG = env_bool("DEBUG")
SECRET_KEY = env_secret("SECRET_KEY", lambda: secrets.token_urlsafe(64))


def _fernet_key():
    return Fernet.generate_key().decode()


# Secrets at rest (SSH keys, passphrases, auth_pass) are encrypted with this key. Several keys may
# be given, comma-separated: the first encrypts, all decrypt (see rotate_encryption_key).
FIELD_ENCRYPTION_KEY = env_secret("FIELD_ENCRYPTION_KEY", _fernet_key)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Behind TLS (production) every cookie is secure and HTTP is redirected; README documents it.
HTTPS = env_bool("VIPANEL_HTTPS")
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("VIPANEL_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Login throttling (django-axes): failed logins counted per user and address.
    "axes",
    "clusters",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Login on every page: views opt out explicitly with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # The viewer's time zone for every page and form (after the user is known).
    "clusters.web.timezones.TimeZoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "vipanel.urls"
WSGI_APPLICATION = "vipanel.wsgi.application"

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
                "clusters.web.timezones.time_zone",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # VIPANEL_SQLITE_PATH lets a worker started by the tests open the test database.
            "NAME": os.environ.get("VIPANEL_SQLITE_PATH", DATA_DIR / "vipanel.sqlite3"),
            # A file, not memory, so that a Celery worker started by the tests sees the same data.
            "TEST": {"NAME": DATA_DIR / "test-vipanel.sqlite3"},
            "OPTIONS": {
                # WAL lets the web server read while a worker writes; the timeout rides out
                # the short write locks instead of failing with "database is locked".
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
    DATA_DIR.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes checks every login first: after VIPANEL_LOGIN_FAILURE_LIMIT wrong passwords for
# one user from one address, that pair is refused (429, even with the right password) until
# VIPANEL_LOGIN_LOCKOUT_MINUTES pass or an admin unlocks it (admin site "Access attempts", or
# `manage.py axes_reset_username NAME` / `axes_reset`). Per pair, so nobody can lock a user
# out from elsewhere; a success resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("VIPANEL_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("VIPANEL_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Its start-up banner would open the output of every command and worker process.
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "clusters:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG or not STATIC_ROOT.exists():
    # Without collectstatic (development, tests) serve from the app folders as they are.
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    WHITENOISE_USE_FINDERS = True

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Shared by the web server and the workers (e.g. the last sweep's duration for /metrics).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}
# The JSON API (clusters/api/): token only, JSON only, every error as JSON.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["clusters.api.auth.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["clusters.api.permissions.RoleByMethod"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "clusters.api.pagination.LimitOffset",
    "DEFAULT_SCHEMA_CLASS": "clusters.api.openapi.RoleAutoSchema",
    "EXCEPTION_HANDLER": "clusters.api.errors.exception_handler",
    "NON_FIELD_ERRORS_KEY": "__all__",
    "UNAUTHENTICATED_USER": None,
    "STRICT_JSON": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "vipanel API",
    "VERSION": "1.0.0",
    "DESCRIPTION": "Clusters, nodes and virtual IPs of keepalived VRRP clusters; pushes, status "
    "and failover history. Authenticate with 'Authorization: Token KEY' (python manage.py "
    "create_api_token USER --role viewer|operator|admin). Secrets are write-only. Each "
    "operation names the role it needs in x-vipanel-role.",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response objects: write-only secrets appear only in requests,
    # read-only fields only in responses, and PATCH bodies have no required fields.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PushKindEnum": "clusters.models.ConfigPush.Kind",
        "PushStateEnum": "clusters.models.ConfigPush.State",
        "PushStepStateEnum": "clusters.models.PushStep.State",
        "FailoverKindEnum": "clusters.models.FailoverEvent.Kind",
        "DetectedByEnum": "clusters.models.FailoverEvent.DetectedBy",
        "AlertKindEnum": "alerts.models.EventKind",
        "IncidentStateEnum": "alerts.models.Incident.State",
        "DeliveryStateEnum": "alerts.models.Delivery.State",
        "DeliveryPurposeEnum": "alerts.models.Delivery.Purpose",
    },
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clusters.api.openapi.require_every_returned_field",
        "clusters.api.openapi.refuse_unknown_fields",
    ],
    # The docs page loads Swagger UI from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Wrong API tokens per client address and window (seconds) before it is answered 429.
VIPANEL_API_TOKEN_FAILURES = env_int("VIPANEL_API_TOKEN_FAILURES", 20)
VIPANEL_API_TOKEN_FAILURE_WINDOW = env_int("VIPANEL_API_TOKEN_FAILURE_WINDOW", 60)
# Clients allowed to read /metrics without an API token.
VIPANEL_METRICS_ALLOW = env_list("VIPANEL_METRICS_ALLOW", ["127.0.0.1", "::1"])

# Celery: JSON only, one task at a time per worker process, late acks only where a task says so.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("VIPANEL_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
# Longer than the longest task, or Redis hands an unacknowledged push to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
# One queue per kind of work, each served by workers of its own (scripts/run.sh, demo.sh,
# docker-compose.yml), so a push of many minutes never delays a sweep or an alert. Any task not
# routed here goes to Celery's default queue, "celery", which the push workers also serve.
SWEEP_QUEUE, PUSH_QUEUE, DRILL_QUEUE, ALERT_QUEUE = "sweeps", "pushes", "drills", "alerts"
CELERY_TASK_ROUTES = {
    # Alert deliveries (alerts/tasks.py): short HTTP calls with deadlines, served by the
    # monitoring workers beside the sweeps: two long pushes must not hold back a failover's alert.
    "alerts.tasks.*": {"queue": ALERT_QUEUE},
    "clusters.tasks.sweep_task": {"queue": SWEEP_QUEUE},
    "clusters.tasks.probe_batch_task": {"queue": SWEEP_QUEUE},
    "clusters.tasks.refresh_desired_task": {"queue": SWEEP_QUEUE},
    "clusters.tasks.run_push_task": {"queue": PUSH_QUEUE},
    "clusters.tasks.drill_task": {"queue": DRILL_QUEUE},
}
# What each kind of worker serves (`celery worker -Q ...`).
SWEEP_WORKER_QUEUES = f"{SWEEP_QUEUE},{ALERT_QUEUE}"
OPERATION_WORKER_QUEUES = f"{PUSH_QUEUE},{DRILL_QUEUE},celery"

# How often beat sweeps every cluster's status, in seconds.
VIPANEL_SWEEP_INTERVAL = env_int("VIPANEL_SWEEP_INTERVAL", 5)
# How often every node's desired config is rendered again (clusters.desired): what an upgrade's
# templates or a changed VIPANEL_NOTIFY_URL would change shows as pending within this time.
VIPANEL_DESIRED_REFRESH = env_int("VIPANEL_DESIRED_REFRESH", 300)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"paramiko": {"level": "WARNING"}},
}

# SSH deadlines, in seconds: connect (TCP, banner and auth each), and a whole command.
VIPANEL_SSH_CONNECT_TIMEOUT = env_int("VIPANEL_SSH_CONNECT_TIMEOUT", 5)
VIPANEL_SSH_COMMAND_TIMEOUT = env_int("VIPANEL_SSH_COMMAND_TIMEOUT", 60)
# A kept (pooled) SSH connection unused for this long is closed; a sweep reuses it before then.
VIPANEL_SSH_POOL_IDLE = env_int("VIPANEL_SSH_POOL_IDLE", 60)
# A status probe's deadline per node: a dead node costs at most this much of a sweep.
VIPANEL_PROBE_TIMEOUT = env_int("VIPANEL_PROBE_TIMEOUT", 5)
# A beat tick hands the clusters to the workers in batches of about this many nodes (one task
# each, probed at once); more workers share more batches.
VIPANEL_SWEEP_BATCH_NODES = env_int("VIPANEL_SWEEP_BATCH_NODES", 100)
# How many nodes a sweep probes at once.
VIPANEL_PROBE_CONCURRENCY = env_int("VIPANEL_PROBE_CONCURRENCY", 32)

# Base URL of this panel as the nodes reach it, for keepalived's notify reports
# (e.g. http://192.0.2.5:8000). Empty: no notify script, the sweep alone finds failovers.
VIPANEL_NOTIFY_URL = os.environ.get("VIPANEL_NOTIFY_URL", "")
if VIPANEL_NOTIFY_URL:
    # It is written into a shell script on every node: scheme, host, port and path only.
    if not re.fullmatch(r"https?://[A-Za-z0-9.\[\]:-]+(/[A-Za-z0-9._/-]*)?", VIPANEL_NOTIFY_URL):
        raise ImproperlyConfigured(
            f"VIPANEL_NOTIFY_URL={VIPANEL_NOTIFY_URL!r}: use http(s)://host[:port][/path] "
            "with no query, quotes or spaces"
        )
    # The nodes call the panel by this name, so Django must accept it as a host. urlsplit drops
    # an IPv6 address's brackets, and Django compares the Host header with them ("[2001:db8::5]").
    _notify = urlsplit(VIPANEL_NOTIFY_URL)
    ALLOWED_HOSTS.append(f"[{_notify.hostname}]" if ":" in _notify.hostname else _notify.hostname)
    if _notify.scheme == "http" and SECURE_SSL_REDIRECT:
        # keepalived's notify script cannot follow a redirect with its POST: a report sent to
        # an http:// notify URL is taken as it is, not redirected to https:// and lost.
        # Reports are signed and used once (clusters/notify.py), so plain HTTP reveals no secret.
        SECURE_REDIRECT_EXEMPT = [r"(^|/)notify/[0-9]+/$"]
# Directories whose .conf files may be a cluster's config_path (comma-separated): a push writes
# that file as root and a preview reads it back, so nothing else may be named.
VIPANEL_CONFIG_DIRS = env_list("VIPANEL_CONFIG_DIRS", ["/etc/keepalived"])
for _dir in VIPANEL_CONFIG_DIRS:
    if not re.fullmatch(r"(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+/?", _dir) or "/." in _dir:
        raise ImproperlyConfigured(
            f"VIPANEL_CONFIG_DIRS: {_dir!r} is not an absolute directory of letters, digits, "
            "'.', '_' and '-' without '..'"
        )
# A notify report older (or newer) than this many seconds is refused as a possible replay.
VIPANEL_NOTIFY_MAX_AGE = env_int("VIPANEL_NOTIFY_MAX_AGE", 60)
# At most this many notify reports per node per window (seconds); more are refused (429). A
# node reports a transition only, so a handful a minute is already a flapping node.
VIPANEL_NOTIFY_RATE_LIMIT = env_int("VIPANEL_NOTIFY_RATE_LIMIT", 6)
VIPANEL_NOTIFY_RATE_WINDOW = env_int("VIPANEL_NOTIFY_RATE_WINDOW", 60)
# A running push whose worker has not renewed its heartbeat for this long is "interrupted".
VIPANEL_PUSH_HEARTBEAT = env_int("VIPANEL_PUSH_HEARTBEAT", 5)
VIPANEL_PUSH_STALE_AFTER = env_int("VIPANEL_PUSH_STALE_AFTER", 60)
# Heartbeat failures in a row a push survives; past them it stops itself (keep
# (RETRIES + 1) x HEARTBEAT below STALE_AFTER, so it stops before the sweep calls it stale).
VIPANEL_PUSH_HEARTBEAT_RETRIES = env_int("VIPANEL_PUSH_HEARTBEAT_RETRIES", 3)
# Seconds added to the VRRP settle time (4 x advert_int) when verifying a pushed node.
VIPANEL_VERIFY_MARGIN = env_int("VIPANEL_VERIFY_MARGIN", 3)

# Alerts (alerts/): a problem must last this many seconds before it alerts (flap damping).
VIPANEL_ALERT_MIN_DURATION = env_int("VIPANEL_ALERT_MIN_DURATION", 5)
# Observations of a VIP further apart than this leave a gap counted as "unknown" availability.
VIPANEL_ALERT_COVERAGE_GAP = env_int("VIPANEL_ALERT_COVERAGE_GAP", 3 * VIPANEL_SWEEP_INTERVAL)
# Deliveries: retries after the first attempt, first back-off in seconds (doubled each time).
VIPANEL_ALERT_RETRIES = env_int("VIPANEL_ALERT_RETRIES", 5)
VIPANEL_ALERT_RETRY_BACKOFF = env_int("VIPANEL_ALERT_RETRY_BACKOFF", 10)
# Failover events, audit entries and finished pushes older than this many days are deleted
# (daily, by beat): a year of history by default.
VIPANEL_RETENTION_DAYS = env_int("VIPANEL_RETENTION_DAYS", 365)
if VIPANEL_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("VIPANEL_RETENTION_DAYS: keep at least 1 day of history")

CELERY_BEAT_SCHEDULE = {
    "sweep": {
        "task": "clusters.tasks.sweep_task",
        "schedule": VIPANEL_SWEEP_INTERVAL,
        # A sweep that could not start before the next one is due is not worth running.
        "options": {"expires": VIPANEL_SWEEP_INTERVAL},
    },
    "desired": {
        "task": "clusters.tasks.refresh_desired_task",
        "schedule": VIPANEL_DESIRED_REFRESH,
        "options": {"expires": VIPANEL_DESIRED_REFRESH},
    },
    "prune": {
        "task": "clusters.tasks.prune_task",
        "schedule": 24 * 3600,
        "options": {"expires": 3600},
    },
    "alerts-prune": {
        "task": "alerts.tasks.prune_task",
        "schedule": 24 * 3600,
        "options": {"expires": 3600},
    },
}
