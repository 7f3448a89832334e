"""Settings for the Hello Practice Portal, read from the environment with safe local defaults.

Production sets DEBUG=false, SECRET_KEY, PHI_MASTER_KEY, DATABASE_URL, CELERY_BROKER_URL and
ALLOWED_HOSTS; without them it refuses to start rather than run with a guessable key.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
TESTING = env_bool("PORTAL_TESTING", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
PHI_MASTER_KEY = os.environ.get("PHI_MASTER_KEY", "")
if not SECRET_KEY or not PHI_MASTER_KEY:
    if DEBUG or TESTING:
        # Local only: `make` writes random keys to .local/; DEBUG=true lets a bare manage.py run.
        SECRET_KEY = SECRET_KEY or "insecure-local-only-secret-key-do-not-use-in-production"
        PHI_MASTER_KEY = PHI_MASTER_KEY or "insecure-local-only-phi-master-key"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY and PHI_MASTER_KEY must be set when DEBUG is off "
            "(for local work: DEBUG=true, or `make manage CMD=...` while `make run` is up)"
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# The two local ports: the portal's (`make run`'s runserver) and the EHR sandbox's. The URLs
# below default to them, so `PORT=8010 SANDBOX_PORT=8110 make run` needs nothing else.
PORT = int(os.environ.get("PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8100"))
# The sandbox's Nextech surface (`python -m ehr_sandbox.nextech`): by default 100 above the
# sandbox's port, so a second stack on other ports needs no third variable.
NEXTECH_SANDBOX_PORT = int(os.environ.get("NEXTECH_SANDBOX_PORT", str(SANDBOX_PORT + 100)))
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS", f"http://127.0.0.1:{PORT},http://localhost:{PORT}"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_htmx",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "oauth2_provider",
    "auditlog",
    "core",
    "accounts",
    "compliance",
    "scheduling",
    "ehr",
    "booking",
    "calls",
    "onboarding",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "receptionist_api.middleware.ApiProblemMiddleware",  # /api/v1/: problem+json, bounded bodies
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.IdleTimeoutMiddleware",
    "portal.middleware.RequireTwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "portal.middleware.TenantMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "accounts.context_processors.shell",
            ],
        },
    },
]

# --- data -------------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://portal@127.0.0.1:5432/portal")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise ImproperlyConfigured("The portal runs on PostgreSQL only (DATABASE_URL=postgres://...)")
# A superuser URL is only for operators' tooling (`manage.py protect_audit_tables`) and tests
# that prove tamper detection; the application never connects with it.
DATABASE_SUPERUSER_URL = os.environ.get("DATABASE_SUPERUSER_URL", "")
# The role that owns the audit tables once protected (compliance.protection); nobody logs in as it.
AUDIT_OWNER_ROLE = os.environ.get("AUDIT_OWNER_ROLE", "portal_audit_owner")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
REDIS_URL = os.environ.get("REDIS_URL", CELERY_BROKER_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_DEFAULT_QUEUE", "default")
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "600")),
    # Redis restores unacked messages every 10 s times this many polls (tests lower it to 1).
    "unacked_restore_throttle": int(os.environ.get("CELERY_UNACKED_RESTORE_THROTTLE", "10")),
}

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}

# --- accounts and security --------------------------------------------------------------------
AUTH_USER_MODEL = "portal.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
IDLE_TIMEOUT_SECONDS = int(os.environ.get("IDLE_TIMEOUT_SECONDS", str(15 * 60)))
# The page warns this long before the idle sign-out, with a button to stay signed in.
IDLE_WARNING_SECONDS = int(os.environ.get("IDLE_WARNING_SECONDS", "60"))
SESSION_COOKIE_AGE = IDLE_TIMEOUT_SECONDS
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG and not TESTING and env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# HTTPS only in production (DEBUG off, not the test suite): plain-HTTP requests are redirected
# (the health check stays reachable over HTTP for the load balancer) and browsers are told to
# use HTTPS for a year. Local work (make run: DEBUG) and the tests serve plain HTTP.
PRODUCTION = not DEBUG and not TESTING
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = int(
    os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600) if PRODUCTION else "0")
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Every page: scripts, styles and everything else from our own origin only (htmx is served from
# our static files; no inline scripts, handlers or style attributes: static/js/portal.js).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Behind this many proxies of our own, the client is the Nth X-Forwarded-For entry from the right
# (core.client_ip); 0: REMOTE_ADDR is the client.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
if TRUSTED_PROXY_COUNT > 0:
    # Our proxies terminate TLS and say so (gunicorn also believes them from 127.0.0.1).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Sign-in throttle (accounts.throttle, in Redis): per account name and address, this many failures
# free, then a wait doubling from the base up to the cap, forgotten after a quiet day; and per
# address, at most SIGN_IN_IP_LIMIT password checks in any SIGN_IN_IP_WINDOW_SECONDS.
SIGN_IN_FREE_FAILURES = int(os.environ.get("SIGN_IN_FREE_FAILURES", "5"))
SIGN_IN_BACKOFF_BASE_SECONDS = float(os.environ.get("SIGN_IN_BACKOFF_BASE_SECONDS", "30"))
SIGN_IN_BACKOFF_MAX_SECONDS = float(os.environ.get("SIGN_IN_BACKOFF_MAX_SECONDS", str(15 * 60)))
SIGN_IN_FAILURE_MEMORY_SECONDS = float(os.environ.get("SIGN_IN_FAILURE_MEMORY_SECONDS", "86400"))
SIGN_IN_IP_LIMIT = int(os.environ.get("SIGN_IN_IP_LIMIT", "60"))
SIGN_IN_IP_WINDOW_SECONDS = float(os.environ.get("SIGN_IN_IP_WINDOW_SECONDS", "300"))
SIGN_IN_REDIS_PREFIX = os.environ.get("SIGN_IN_REDIS_PREFIX", "hpp:signin")
OTP_TOTP_ISSUER = "Hello Practice Portal"
OTP_STATIC_BACKUP_CODES = 10

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "receptionist_api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "receptionist_api.errors.problem_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hello Practice Portal — Receptionist API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "receptionist_api.errors.add_common_problems",  # 400/404/405/413/... on every operation
    ],
}
OAUTH2_PROVIDER = {
    "SCOPES": {
        "availability:read": "Read appointment types and availability",
        "bookings:write": "Hold slots and book appointments",
        "calls:write": "Record calls, transcripts and screening",
    },
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    # Receptionist API (receptionist_api): a client's scopes are those granted to its ApiClient;
    # the token endpoint reads form or JSON bodies; tokens are stored only as checksums.
    "SCOPES_BACKEND_CLASS": "receptionist_api.oauth.ApiClientScopes",
    "OAUTH2_BACKEND_CLASS": "receptionist_api.oauth.FormOrJSONOAuthLibCore",
    "OAUTH2_VALIDATOR_CLASS": "receptionist_api.oauth.ApiClientValidator",
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    # Only the client-credentials grant is used: refuse the legacy flows outright (RFC 9700).
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}
# Named explicitly so migrations that point at it (scheduling.ApiClient) resolve the swappable.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
HOLD_MINUTES = int(os.environ.get("HOLD_MINUTES", "5"))

# --- i18n, static -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# No PHI in any log line: every handler redacts (core.logsafety), httpx/httpcore (whose INFO
# lines are EHR URLs with names and birth dates in the query) stay below WARNING, and the dev
# server's request lines go through the same redacting handler.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_phi": {"()": "core.logsafety.RedactingFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_phi"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

AUDITLOG_INCLUDE_ALL_MODELS = False

# --- compliance: PHI keys, audit trail -------------------------------------------------------
# PHI_MASTER_KEY (above) wraps new per-practice data keys. During a master-key rotation every
# process is first given PHI_MASTER_KEY_NEW (accepted for unwrapping; `manage.py rotate_keys`
# re-wraps under it), then it becomes PHI_MASTER_KEY with the old one in PHI_MASTER_KEYS_PREVIOUS
# until `rotate_keys --check` passes. See `manage.py rotate_keys --help`.
PHI_MASTER_KEY_NEW = os.environ.get("PHI_MASTER_KEY_NEW", "")
PHI_MASTER_KEYS_PREVIOUS = env_list("PHI_MASTER_KEYS_PREVIOUS", "")
PHI_DEFAULT_PHONE_REGION = os.environ.get("PHI_DEFAULT_PHONE_REGION", "US")

# Audit trail: auditlog writes compliance.ChangeEntry (tenant, request id as `cid`, chained);
# the audit context middleware tells it and compliance.audit.record who is acting.
AUDITLOG_LOGENTRY_MODEL = "compliance.ChangeEntry"
AUDITLOG_CID_GETTER = "compliance.context.current_request_id"
MIDDLEWARE.insert(
    MIDDLEWARE.index("auditlog.middleware.AuditlogMiddleware"),
    "compliance.middleware.AuditContextMiddleware",
)
# Support sessions (impersonation): after the audit context, before the tenant middleware.
MIDDLEWARE.insert(
    MIDDLEWARE.index("auditlog.middleware.AuditlogMiddleware"),
    "compliance.middleware.ImpersonationMiddleware",
)
# The voice agent's routes (portal.handlers.API_PREFIXES) run this stack instead: a bearer
# token authenticates each request, so no sessions, CSRF, second factor, messages, idle timeout,
# support sessions or portal tenancy; the audit context, request id and security headers (CSP
# too: the schema's documentation pages are HTML) as everywhere.
# API_SEPARATE_STACK=false serves them through MIDDLEWARE too (the benchmark compares both).
API_SEPARATE_STACK = env_bool("API_SEPARATE_STACK", True)
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "receptionist_api.middleware.SettledPolicyCSPMiddleware",  # django-csp's, built once
    "portal.middleware.RequestIdMiddleware",
    "receptionist_api.middleware.ApiProblemMiddleware",
    "compliance.middleware.AuditContextMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
]
TEMPLATES[0]["OPTIONS"]["context_processors"].append(  # type: ignore[index]
    "compliance.context_processors.impersonation"  # the support-session banner on every page
)
if TESTING:
    # Audit tables refuse TRUNCATE; a test database (named test_*) lets sessions that carry this
    # flag truncate them, which Django's flush between transactional tests needs.
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options["options"] = " ".join(
        filter(None, [_db_options.get("options", ""), "-c compliance.test_truncate=on"])
    )

# --- ehr (app label integrations): EHR client, sync, webhooks ---------------------------------
# Queues: booking writes (and their insertion webhooks) on `bookings`, ahead of `sync` traffic
# (full syncs, reconcile, mirror webhooks); workers should consume `bookings` first. A booking
# task routes itself with INTEGRATIONS_QUEUES["bookings"] (or an entry below).
INTEGRATIONS_QUEUES = {"bookings": "bookings", "sync": "sync"}
CELERY_TASK_ROUTES = {
    "integrations.process_webhook": {"queue": "sync"},
    "integrations.sync_connection": {"queue": "sync"},
    "integrations.reconcile_connection": {"queue": "sync"},
    "integrations.reconcile_all": {"queue": "sync"},
    "integrations.reconcile_near_connection": {"queue": "sync"},
    "integrations.reconcile_near_all": {"queue": "sync"},
    "integrations.flush_health": {"queue": "sync"},
    "integrations.requeue_stale_webhooks": {"queue": "sync"},
    "integrations.poll_nextech_all": {"queue": "sync"},
    "integrations.poll_nextech_connection": {"queue": "sync"},
    "integrations.refresh_native_slots": {"queue": "sync"},
    # bookings (booking.tasks): the booking pipeline and its outbox relay
    "scheduling.process_booking": {"queue": "bookings"},
    "scheduling.poll_booking_insertion": {"queue": "bookings"},
    "scheduling.cancel_booking_in_ehr": {"queue": "bookings"},
    "scheduling.relay_outbox": {"queue": "bookings"},
    "scheduling.expire_booking_requests": {"queue": "bookings"},
}
CELERY_BEAT_SCHEDULE = {
    "integrations-reconcile": {
        "task": "integrations.reconcile_all",
        "schedule": float(os.environ.get("EHR_RECONCILE_SECONDS", str(6 * 3600))),
    },
    # The near days' calendar (a lost webhook's repair), between the full reconciles: one
    # paginated appointments read per connection, through the same rate limiter.
    "integrations-reconcile-near": {
        "task": "integrations.reconcile_near_all",
        "schedule": float(os.environ.get("EHR_NEAR_RECONCILE_SECONDS", "300")),
    },
    "integrations-flush-health": {"task": "integrations.flush_health", "schedule": 60.0},
    # Nextech has no webhooks: each connection's changes are asked for this often (one
    # _lastUpdated search a poll: 0.5/s of the endpoint's 20/s at 2 s).
    "integrations-poll-nextech": {
        "task": "integrations.poll_nextech_all",
        "schedule": float(os.environ.get("NEXTECH_POLL_SECONDS", "2")),
    },
    "integrations-requeue-webhooks": {
        "task": "integrations.requeue_stale_webhooks",
        "schedule": 120.0,
    },
}
# Seconds: connect / read / write / pool. Every EHR call carries all four.
# Writes (not safe to repeat: a lost answer is looked up before any retry) wait longer for their
# answer than reads, which a caller on the line would rather see asked again.
EHR_TIMEOUTS = {
    "connect": 3.0,
    "read": float(os.environ.get("EHR_WRITE_TIMEOUT_SECONDS", "10")),
    "write": 10.0,
    "pool": 5.0,
}
EHR_READ_TIMEOUTS = {
    "connect": 2.0,
    "read": float(os.environ.get("EHR_READ_TIMEOUT_SECONDS", "5")),
    "write": 5.0,
    "pool": 5.0,
}
EHR_MAX_ATTEMPTS = int(os.environ.get("EHR_MAX_ATTEMPTS", "5"))
EHR_BACKOFF_BASE_SECONDS = 0.25  # full jitter: sleep uniform(0, min(cap, base * 2**attempt))
EHR_BACKOFF_CAP_SECONDS = 8.0
EHR_RATE_LIMIT_MAX_WAIT_SECONDS = 5.0  # longer than this: raise EHRRateLimited, task re-queues
EHR_RATE_LIMIT_SAFETY = (0.02, 0.1)  # enforce window * (1 + r) + s: jitter never crosses limits
EHR_API_VERSION = "v20240412"
EHR_SYNC_HORIZON_DAYS = int(os.environ.get("EHR_SYNC_HORIZON_DAYS", "90"))
EHR_NEAR_RECONCILE_DAYS = int(os.environ.get("EHR_NEAR_RECONCILE_DAYS", "3"))
NEXTECH_POLL_SECONDS = float(os.environ.get("NEXTECH_POLL_SECONDS", "2"))
# A native-mode location's free slots past the near days are re-read this often (the near days
# every poll).
NEXTECH_SLOT_FAR_SECONDS = float(os.environ.get("NEXTECH_SLOT_FAR_SECONDS", "300"))
EHR_WEBHOOK_TOLERANCE_SECONDS = 300
INTEGRATIONS_REDIS_PREFIX = os.environ.get("INTEGRATIONS_REDIS_PREFIX", "hpp:integrations")
# The EHR sandbox (`python -m ehr_sandbox`) and where the EHR reaches our webhooks.
# Locally both follow the two ports `make run` serves on (PORT, SANDBOX_PORT; see the README).
EHR_SANDBOX_URL = os.environ.get("EHR_SANDBOX_URL", f"http://127.0.0.1:{SANDBOX_PORT}")
EHR_SANDBOX_API_KEY = os.environ.get("EHR_SANDBOX_API_KEY", "sandbox-api-key")
EHR_SANDBOX_ADMIN_TOKEN = os.environ.get("EHR_SANDBOX_ADMIN_TOKEN", "sandbox-admin")
PORTAL_PUBLIC_URL = os.environ.get("PORTAL_PUBLIC_URL", f"http://127.0.0.1:{PORT}")
# The sandbox's Nextech surface, where an import of an `ehr.kind = "nextech"` file writes the
# practice's set-up (templates, types, purposes) in development. Empty (the default without
# DEBUG): a real Nextech practice is set up by its office, and the import only syncs it.
NEXTECH_SANDBOX_URL = os.environ.get(
    "NEXTECH_SANDBOX_URL", f"http://127.0.0.1:{NEXTECH_SANDBOX_PORT}" if DEBUG else ""
)
NEXTECH_SANDBOX_ADMIN_TOKEN = os.environ.get("NEXTECH_SANDBOX_ADMIN_TOKEN", "sandbox-admin")
NEXTECH_SANDBOX_CLIENT_ID = os.environ.get("NEXTECH_SANDBOX_CLIENT_ID", "sandbox-client")
NEXTECH_SANDBOX_CLIENT_SECRET = os.environ.get("NEXTECH_SANDBOX_CLIENT_SECRET", "sandbox-secret")
# Hello's own app registration at Nextech (the OAuth client every practice's service user signs
# in through), for connections to the real Select API made on the connection page; a connection
# to the sandbox above uses the sandbox's client instead.
NEXTECH_CLIENT_ID = os.environ.get("NEXTECH_CLIENT_ID", "")
NEXTECH_CLIENT_SECRET = os.environ.get("NEXTECH_CLIENT_SECRET", "")
NEXTECH_TOKEN_URL = os.environ.get(
    "NEXTECH_TOKEN_URL",
    "https://login.microsoftonline.com/a5f8392a-a68f-4d74-a353-aefc87f29848/oauth2/token",
)

# --- bookings (booking.services / booking.tasks) -----------------------------------------
CELERY_BEAT_SCHEDULE["scheduling-relay-outbox"] = {
    "task": "scheduling.relay_outbox",
    "schedule": float(os.environ.get("BOOKING_RELAY_SECONDS", "5")),
}
CELERY_BEAT_SCHEDULE["scheduling-expire-booking-requests"] = {
    "task": "scheduling.expire_booking_requests",
    "schedule": 300.0,
}
# A request-mode booking at an EHR without a follow-up list waits in our front desk's queue,
# its slot claimed, this long at most (and never past the appointment's start).
BOOKING_REQUEST_HOLD_HOURS = float(os.environ.get("BOOKING_REQUEST_HOLD_HOURS", "48"))
CELERY_BEAT_SCHEDULE["scheduling-requeue-stale-bookings"] = {
    "task": "scheduling.requeue_stale_bookings",
    "schedule": 300.0,
}
if os.environ.get("BOOKINGS_QUEUE"):  # a test worker's own queue
    INTEGRATIONS_QUEUES["bookings"] = os.environ["BOOKINGS_QUEUE"]
BOOKING_POLL_SECONDS = float(os.environ.get("BOOKING_POLL_SECONDS", "30"))
BOOKING_POLL_FIRST_SECONDS = float(os.environ.get("BOOKING_POLL_FIRST_SECONDS", "2"))
BOOKING_MAX_RETRIES = int(os.environ.get("BOOKING_MAX_RETRIES", "10"))
# A sent booking message whose work is not done (nor a later run scheduled) this long is sent
# again by the relay: the broker may have lost it.
BOOKING_OUTBOX_ACK_SECONDS = float(os.environ.get("BOOKING_OUTBOX_ACK_SECONDS", "60"))
BOOKING_WORKER_POOL = os.environ.get("BOOKING_WORKER_POOL", "threads")
BOOKING_WORKER_CONCURRENCY = int(os.environ.get("BOOKING_WORKER_CONCURRENCY", "16"))

# Mark BAAs past their expiry date as expired (bookkeeping: the PHI gate itself reads dates).
CELERY_BEAT_SCHEDULE["compliance-expire-agreements"] = {
    "task": "compliance.expire_agreements",
    "schedule": 3600.0,
}
# The audit checkpoints' Ed25519 key (compliance.checkpoints): 64 hex digits in production;
# locally a key generated on first use into the state directory.
AUDIT_SIGNING_KEY = os.environ.get("AUDIT_SIGNING_KEY", "")
AUDIT_SIGNING_KEY_FILE = os.environ.get(
    "AUDIT_SIGNING_KEY_FILE",
    str(BASE_DIR / os.environ.get("DEV_STATE_DIR", ".local") / "audit-signing.key"),
)
# The audit sealer (compliance.sealer): `manage.py seal_audit --follow` seals within
# milliseconds where it runs; this beat task bounds the lag where it does not.
AUDIT_SEAL_SECONDS = float(os.environ.get("AUDIT_SEAL_SECONDS", "1"))
CELERY_BEAT_SCHEDULE["compliance-seal-audit"] = {
    "task": "compliance.seal_audit",
    "schedule": AUDIT_SEAL_SECONDS,
    "options": {"expires": max(5.0, 5 * AUDIT_SEAL_SECONDS)},
}
# Close support sessions past their end (revoking anything credential-like made in them).
CELERY_BEAT_SCHEDULE["compliance-close-support-sessions"] = {
    "task": "compliance.close_expired_support_sessions",
    "schedule": 60.0,
}

# --- calls (calls.tasks): encounter-note repair sweep, retention purge ---------------------------
CELERY_BEAT_SCHEDULE["calls-sweep-encounter-notes"] = {
    "task": "calls.sweep_encounter_notes",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["calls-purge-expired"] = {"task": "calls.purge_expired", "schedule": 3600.0}
ENCOUNTER_NOTE_POLL_SECONDS = float(os.environ.get("ENCOUNTER_NOTE_POLL_SECONDS", "10"))
ENCOUNTER_NOTE_MAX_RETRIES = int(os.environ.get("ENCOUNTER_NOTE_MAX_RETRIES", "10"))
# A document the EHR rejected is posted again this many times (with backoff) before staff see it.
ENCOUNTER_NOTE_MAX_REJECTIONS = int(os.environ.get("ENCOUNTER_NOTE_MAX_REJECTIONS", "3"))
