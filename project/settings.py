"""Fanout settings: one module, every knob read from the environment (documented in .env.example).

Embedded default: SQLite (tuned for concurrent writers: docs/traps.md, SQLite locking) + django-q2's ORM broker.
Scale-out: DATABASE_URL (PostgreSQL) + REDIS_URL (broker and cache); nothing else changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dj_database_url
import plotly

from project.env import EnvError, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FANOUT_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise EnvError("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (see .env.example)")
    SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG-on"
LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", LOCAL_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- HTTPS ------------------------------------------------------------------------------------
# On by default once the app is served to other hosts with DEBUG off (what `check --deploy` asks for);
# off for the local default (`make run` on http://127.0.0.1:8000/), which has no certificate.
# DJANGO_HTTPS=1/0 forces it either way; behind a TLS-terminating proxy also set DJANGO_SECURE_PROXY_SSL_HEADER.
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG and not set(ALLOWED_HOSTS) <= set(LOCAL_HOSTS))
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "ninja",  # the API docs page then uses its bundled Swagger UI, not a CDN (no internet at run time)
    "search",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "search.api.middleware.ApiJsonErrors",  # every error under /api/ as JSON, also those no API view made
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "project.urls"
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
            ],
        },
    },
]
WSGI_APPLICATION = "project.wsgi.application"

# --- Database ---------------------------------------------------------------------------------
SQLITE_PATH = Path(env_str("FANOUT_SQLITE_PATH", str(VAR_DIR / "fanout.sqlite3")))
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES: dict[str, Any] = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            # The only set-up with zero "database is locked" errors under concurrent writers
            # (docs/traps.md, SQLite locking): WAL, a busy timeout, and BEGIN IMMEDIATE for every transaction.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # Tests that start a real qcluster need the test database in a file both can open.
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (django-q2 keeps cluster stats here, so it must be shared between processes) --------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES: dict[str, Any] = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # JSON, not Django's pickles: a value planted in Redis is read as a miss, never run (project/cache.py).
            "OPTIONS": {"serializer": "project.cache.JSONSerializer"},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Fanout -----------------------------------------------------------------------------------
# One unit of work is at most this many fits; more units spread a search over more machines.
FANOUT_MAX_FITS_PER_UNIT = env_int("FANOUT_MAX_FITS_PER_UNIT", 1000)
# With several machines attached, aim for this many units per machine, each of at least this many fits.
FANOUT_UNITS_PER_MACHINE = env_int("FANOUT_UNITS_PER_MACHINE", 4)
FANOUT_MIN_FITS_PER_UNIT = env_int("FANOUT_MIN_FITS_PER_UNIT", 20)
# A claimed unit takes the queued units that follow it in its search while, by the wall time per fit of the
# search's finished units, the whole stays under this many seconds (services.merging); 0: never.
FANOUT_UNIT_SECONDS = env_int("FANOUT_UNIT_SECONDS", 5)
# A search with more candidates than this (in its first round) has them stored by a background task, in batches,
# not in the request that creates it (services.searches.search_prepare).
FANOUT_INLINE_CANDIDATES = env_int("FANOUT_INLINE_CANDIDATES", 5000)
# A search above this many fits (candidates × folds) is refused before anything is stored.
FANOUT_MAX_FITS = env_int("FANOUT_MAX_FITS", 1_000_000)
# A search's n_jobs (processes per unit) beyond ±this is refused; the runner also clamps it to the machine's cores.
FANOUT_MAX_N_JOBS = env_int("FANOUT_MAX_N_JOBS", 256)
# Per-user limits checked when a search is created (0 = no limit; searches without an owner are not limited):
# fits not done yet across the user's queued and running searches (the new one included), and how many of them.
FANOUT_MAX_QUEUED_FITS_PER_USER = env_int("FANOUT_MAX_QUEUED_FITS_PER_USER", 2_000_000)
FANOUT_MAX_ACTIVE_SEARCHES_PER_USER = env_int("FANOUT_MAX_ACTIVE_SEARCHES_PER_USER", 50)
# A unit's message is a turn on the machine that received it: the unit claimed is chosen fairly between owners
# (search/services/fairshare.py); 0 claims exactly the unit the message names (first come, first served).
FANOUT_FAIR_SHARE = env_bool("FANOUT_FAIR_SHARE", True)
# Hard limit for one unit, in seconds (django-q2's task timeout is derived from it).
FANOUT_UNIT_TIMEOUT = env_int("FANOUT_UNIT_TIMEOUT", 6 * 3600)
# A running unit renews its lease every few seconds; a lease this old means its worker is gone.
FANOUT_LEASE_SECONDS = env_int("FANOUT_LEASE_SECONDS", 30)
# A queued unit that waited this long while the broker holds fewer messages than queued units is sent again.
FANOUT_RESEND_SECONDS = env_int("FANOUT_RESEND_SECONDS", 60)
# Each machine's `manage.py fanoutcluster` runs the reconciler this often, beside its workers (not on the queue).
FANOUT_RECONCILE_SECONDS = env_int("FANOUT_RECONCILE_SECONDS", 5)
# On SIGTERM, `fanoutcluster` gives its qcluster this long to stop, then SIGKILLs what is left (runners included).
FANOUT_STOP_SECONDS = env_int("FANOUT_STOP_SECONDS", 5)
if FANOUT_RECONCILE_SECONDS < 1:
    raise EnvError(f"FANOUT_RECONCILE_SECONDS={FANOUT_RECONCILE_SECONDS}: expected at least 1 (seconds)")
if FANOUT_STOP_SECONDS < 0:
    raise EnvError(f"FANOUT_STOP_SECONDS={FANOUT_STOP_SECONDS}: expected at least 0 (seconds)")
# How long a running unit keeps retrying its writes while the database is unreachable.
FANOUT_DB_RETRY_SECONDS = env_int("FANOUT_DB_RETRY_SECONDS", 60)
# A unit whose runner crashed is retried this many times before the search fails.
FANOUT_MAX_ATTEMPTS = env_int("FANOUT_MAX_ATTEMPTS", 3)
# Seconds a pilot may take (a few real fits timed before launch when there are no past fits); 0 = no pilot.
FANOUT_PILOT_SECONDS = env_int("FANOUT_PILOT_SECONDS", 5)
# Where workers cache data set files by content hash.
FANOUT_CACHE_DIR = Path(env_str("FANOUT_CACHE_DIR", str(VAR_DIR / "datasets")))
FANOUT_CLUSTER_NAME = env_str("FANOUT_CLUSTER_NAME", "fanout")
# Copy a stored identical fit (same estimator, params, data, split, scoring, versions) instead of rerunning it.
FANOUT_REUSE_FITS = env_bool("FANOUT_REUSE_FITS", True)
# Grow forests and boosting along n_estimators (max_iter) once per fold instead of refitting each size,
# for the estimators proven to give identical scores (search/engine/reuse.py); 0 fits every size alone.
FANOUT_PATH_REUSE = env_bool("FANOUT_PATH_REUSE", True)

# Fits (or grown chains) per dispatched task inside a runner; 0 lets search/engine/schedule.py choose (one each
# while there are few, batches shrinking to one at the end when there are many tiny ones).
FANOUT_FIT_BATCH = env_int("FANOUT_FIT_BATCH", 0)

# Refit models (a skops file, a joblib file and a JSON card per search) and prediction files are kept in the
# Django storage "models": files under FANOUT_MODEL_DIR by default (share that directory between machines), or any
# storage given as JSON in FANOUT_MODEL_STORAGE, e.g. django-storages' S3Storage for an S3-compatible bucket.
FANOUT_MODEL_DIR = Path(env_str("FANOUT_MODEL_DIR", str(VAR_DIR / "models")))
FANOUT_MODEL_STORAGE = env_str("FANOUT_MODEL_STORAGE")
try:
    _model_storage = json.loads(FANOUT_MODEL_STORAGE) if FANOUT_MODEL_STORAGE else None
except json.JSONDecodeError as exc:
    raise EnvError(f"FANOUT_MODEL_STORAGE: expected a JSON object with BACKEND and OPTIONS ({exc})") from None
if _model_storage is not None and not (isinstance(_model_storage, dict) and "BACKEND" in _model_storage):
    raise EnvError(f"FANOUT_MODEL_STORAGE={FANOUT_MODEL_STORAGE!r}: expected a JSON object with a BACKEND key")
STORAGES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "models": _model_storage
    or {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(FANOUT_MODEL_DIR)}},
}
# One prediction file (an uploaded CSV) may take this long on the cluster before it fails.
FANOUT_PREDICT_TIMEOUT = env_int("FANOUT_PREDICT_TIMEOUT", 600)

# --- django-q2 --------------------------------------------------------------------------------
# One worker per machine: each unit already uses every core with n_jobs=-1 (docs/traps.md, oversubscription and
# memory).
# Workers stay daemonic (the default); the fits run in a separate runner process group instead.
# The broker never owns redelivery: our own WorkUnit lease + reconciler does (docs/traps.md, at-least-once delivery),
# so `retry` is far above the timeout and failures are acknowledged.
Q_CLUSTER: dict[str, Any] = {
    "name": FANOUT_CLUSTER_NAME,
    "workers": env_int("FANOUT_Q_WORKERS", 1),
    "queue_limit": 1,
    "bulk": 1,
    "timeout": FANOUT_UNIT_TIMEOUT + 60,
    "retry": 4 * (FANOUT_UNIT_TIMEOUT + 60),
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": 200,
    "catch_up": False,
    "poll": 0.1,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- The usual ----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# Plotly's JavaScript comes from the installed plotly package (same version as the Python side), never a CDN.
STATICFILES_DIRS: list[Any] = [BASE_DIR / "static", ("plotly", Path(plotly.__file__).parent / "package_data")]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing one
WHITENOISE_USE_FINDERS = True  # serve static files (Plotly's JS among them) without collectstatic
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "search-list"
LOGOUT_REDIRECT_URL = "login"
# Failed logins allowed per username and per client address within the window; more are answered 429.
FANOUT_LOGIN_ATTEMPTS = env_int("FANOUT_LOGIN_ATTEMPTS", 10)
FANOUT_LOGIN_WINDOW_SECONDS = env_int("FANOUT_LOGIN_WINDOW_SECONDS", 300)
# API requests allowed per token within the window (counted in the shared cache); more are answered 429.
FANOUT_API_RATE = env_int("FANOUT_API_RATE", 600)
FANOUT_API_RATE_WINDOW_SECONDS = env_int("FANOUT_API_RATE_WINDOW_SECONDS", 60)
# Uploaded CSV files larger than this are refused with a message (in MB).
FANOUT_MAX_UPLOAD_MB = env_int("FANOUT_MAX_UPLOAD_MB", 50)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("FANOUT_LOG_LEVEL", "INFO")},
}
