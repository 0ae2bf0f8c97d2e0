"""Settings for Canvas Events, read from the environment with django-environ.

Every variable is listed in the README. Production is the default: DEBUG is off and SECRET_KEY is required
unless DEBUG is switched on explicitly (`make run` does that for local use).
"""

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core ---------------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see README: Configuration).")
    # Only for local development: a key that is obviously not a secret.
    SECRET_KEY = "dev-insecure-key-only-for-debug-mode-never-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "canvas",
    "accounts",
    "events",
]

MIDDLEWARE = [
    "canvas.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Browser-only middleware: Django's own, skipped on the Events API (/v1/), see canvas/middleware.py.
    "canvas.middleware.BrowserOnlySessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "canvas.middleware.BrowserOnlyCsrfViewMiddleware",
    "canvas.middleware.BrowserOnlyAuthenticationMiddleware",
    "canvas.middleware.BrowserOnlyMessageMiddleware",
    # A signed-in user without a team gets a page that says what to do next, wherever they were going.
    "accounts.middleware.NoTeamMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "canvas.middleware.BrowserOnlyCSPMiddleware",
    # Inside CSP and sessions: the 405 page it renders gets the CSP header and knows the user.
    "canvas.middleware.MethodNotAllowedPageMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "canvas.urls"
WSGI_APPLICATION = "canvas.wsgi.application"

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
                "accounts.context_processors.current_team",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------------------
# SQLite under var/ for `make run` without a DATABASE_URL; PostgreSQL everywhere else (tests, production).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'canvas.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A 2xx is only sent after the row is durable: never let a deployment turn synchronous_commit off.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=on"
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 3)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits and token revocation are shared through it) -----------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Authentication -----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # django-axes counts failed logins (the admin's included) and locks out before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Lock the pair (account, address): a guesser is stopped without letting anyone lock a colleague out from afar.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The login form posts the email as "username" (Django's AuthenticationForm), not as USERNAME_FIELD "email".
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HANDLER = "accounts.axes_handler.TokenScrubbingAxesHandler"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None
# Creating a token after this long since the last login asks for the password again.
REAUTHENTICATE_AFTER = timedelta(minutes=15)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "settings"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Invitation links (accounts.services.invitation_send) work once, for this long.
INVITATION_MAX_AGE = timedelta(days=7)

# --- Email (invitations): the console under `make run`, SMTP from EMAIL_URL elsewhere --------------------------
# e.g. EMAIL_URL=smtp+tls://user:password@smtp.example.com:587; unset and DEBUG off, Django's SMTP on localhost:25.
vars().update(env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Canvas Events <no-reply@canvasapp.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (WhiteNoise serves them from gunicorn) ----------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- HTTPS and cookies: on by default in production, switchable off behind a trusted plain-HTTP proxy -------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_HTTPONLY = True
# Django's W003 looks for CsrfViewMiddleware by its exact dotted path; canvas.checks checks our subclass instead.
SILENCED_SYSTEM_CHECKS = ["security.W003"]
# Content-Security-Policy (django-csp): no inline or third-party scripts anywhere. Inline styles stay allowed
# for the Swagger UI page of /v1/docs, which sets a few; scripts are what CSP must keep out.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
X_FRAME_OPTIONS = "DENY"

# --- REST framework and OpenAPI -----------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "events.ingest.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Canvas Events API",
    "DESCRIPTION": "Push your event stream into Canvas.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from the drf-spectacular-sidecar package: the docs page needs no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Events API ---------------------------------------------------------------------------------------------
EVENTS_RATE_LIMIT_PER_SECOND = env.int("EVENTS_RATE_LIMIT_PER_SECOND", default=1000)
# Single events from concurrent requests share one transaction (events/ingest/group_commit.py); 0 ms waits for nothing
# beyond what is already pending.
EVENTS_GROUP_COMMIT = env.bool("EVENTS_GROUP_COMMIT", default=True)
EVENTS_GROUP_COMMIT_WAIT_MS = env.float("EVENTS_GROUP_COMMIT_WAIT_MS", default=2.0)
# The WSGI front end (events/ingest/wsgi.py) answers POSTs to the ingest paths before Django's request machinery.
EVENTS_FRONT_END = env.bool("EVENTS_FRONT_END", default=True)
# The origin the Settings page's examples send events to (events/tokens/onboarding.py); unset: the page's own origin.
EVENTS_PUBLIC_URL = env.str("EVENTS_PUBLIC_URL", default="")
if EVENTS_PUBLIC_URL and not re.fullmatch(r"https?://[^/?#\s]+/?", EVENTS_PUBLIC_URL):
    raise ImproperlyConfigured(
        f"EVENTS_PUBLIC_URL must be an origin such as https://events.example.com, not {EVENTS_PUBLIC_URL!r}."
    )

# --- Growth (events/retention.py): the dedupe window and retention ----------------------------------------------
# A messageId resent within this many days of its event is a duplicate; later, it is stored again.
EVENTS_DEDUPE_WINDOW_DAYS = env.int("EVENTS_DEDUPE_WINDOW_DAYS", default=30)
# The retention a new team gets (Team.event_retention_days; staff change it per team in admin). 0: kept forever.
EVENTS_RETENTION_DAYS = env.int("EVENTS_RETENTION_DAYS", default=365)
if EVENTS_DEDUPE_WINDOW_DAYS < 1 or EVENTS_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("EVENTS_DEDUPE_WINDOW_DAYS must be at least 1, EVENTS_RETENTION_DAYS at least 0.")

# --- Warehouse (events/warehouse/sync.py): team logins and the sync loop --------------------------------------------
WAREHOUSE_ROLE_PREFIX = env.str("WAREHOUSE_ROLE_PREFIX", default="")  # default: the database's name
WAREHOUSE_PUBLIC_HOST = env.str("WAREHOUSE_PUBLIC_HOST", default="")  # default: the database's host
WAREHOUSE_PUBLIC_PORT = env.str("WAREHOUSE_PUBLIC_PORT", default="")  # default: the database's port
WAREHOUSE_SYNC_INTERVAL = env.float("WAREHOUSE_SYNC_INTERVAL", default=5.0)

_TIME_UNITS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}  # in milliseconds
_MEMORY_UNITS = {"kB": 1, "MB": 1024, "GB": 1024**2, "TB": 1024**3}  # in kilobytes


def postgres_quantity(name: str, *, default: str, units: dict[str, int], minimum: int = 1) -> str:
    """A PostgreSQL time or memory setting such as `5min` or `64MB`, checked here so that a typo stops the
    start-up instead of the next login rotation. The bound is PostgreSQL's: a 32-bit count of the base unit."""
    value = env.str(name, default=default).strip()
    match = re.fullmatch(r"([0-9]+)\s*([A-Za-z]+)", value)
    if not match or match[2] not in units or not minimum <= int(match[1]) * units[match[2]] <= 2**31 - 1:
        raise ImproperlyConfigured(
            f"{name} must be a whole number with one of the units {', '.join(units)} (e.g. {default}), "
            f"between {minimum} and 2147483647 {next(iter(units))}; got {value!r}."
        )
    return f"{match[1]}{match[2]}"


# Limits of each team's login, set on the role when it is created or rotated (events/warehouse/credentials.py).
WAREHOUSE_STATEMENT_TIMEOUT = postgres_quantity("WAREHOUSE_STATEMENT_TIMEOUT", default="5min", units=_TIME_UNITS)
WAREHOUSE_WORK_MEM = postgres_quantity("WAREHOUSE_WORK_MEM", default="64MB", units=_MEMORY_UNITS, minimum=64)
WAREHOUSE_TEMP_FILE_LIMIT = postgres_quantity("WAREHOUSE_TEMP_FILE_LIMIT", default="1GB", units=_MEMORY_UNITS)

# --- Logging: JSON lines with the request id (canvas/observability.py); LOG_FORMAT=text for humans -----------
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or text.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "canvas.observability.RequestIdFilter"},
        "scrub_tokens": {"()": "canvas.observability.TokenScrubbingFilter"},
    },
    "formatters": {
        "json": {"()": "canvas.observability.CanvasJsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "scrub_tokens"],  # no token reaches a log line (docs/operations.md)
        },
    },
    # Django's own handlers (django.utils.log.DEFAULT_LOGGING: console, mail_admins, django.server) would write
    # without the filter; declared here, its loggers lose them and their lines go to the root's handler.
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Metrics (Prometheus, /metrics) ---------------------------------------------------------------------------
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
