"""Settings for the galaxy labelling service, read from the environment (see docs/configuration.md)."""

import re
import secrets
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from labeling.env import env_bool, env_int, env_list, env_path, env_rates, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random string, or set DJANGO_DEBUG=1 for a development "
            "server, which keeps a generated key in var/dev-secret-key."
        )
    # A development key that survives restarts, so sessions stay valid while one works.
    key_file = VAR_DIR / "dev-secret-key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_q",
    "axes",
    "csp",
    "labeling",
]

MIDDLEWARE = [
    # /healthz/ for container health checks, before the host check and the HTTPS redirect (labeling/health.py).
    "labeling.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header (CONTENT_SECURITY_POLICY below) on every response, static files included.
    "csp.middleware.CSPMiddleware",
    # Static files straight from STATIC_ROOT, before sessions or the URL conf are touched; after SecurityMiddleware
    # so that its HTTPS redirect and headers apply to them too.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a sign-in refused for a lockout into labeling.lockouts.lockout_response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "labeling.urls"
WSGI_APPLICATION = "labeling.wsgi.application"

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
                "labeling.context_processors.roles",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": parse_database_url(_database_url)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # The worker and the web server write to the same file: wait for the lock rather than fail.
            "OPTIONS": {"timeout": 20},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static")
# whitenoise (see MIDDLEWARE) serves STATIC_ROOT. The manifest storage makes collectstatic write every file again
# under a name carrying a hash of its content, compressed, and {% static %} link to that name, so that browsers may
# cache it for a year. It needs collectstatic to have run (the Docker image runs it at build time): without the
# manifest, {% static %} raises. Hence on outside DEBUG, off under DEBUG (files come from static/ as they are
# edited); the test settings turn it off, since the suite never runs collectstatic.
_STATIC_BACKEND = ("labeling.storage.StaticStorage"
                   if env_bool("DJANGO_STATIC_MANIFEST", not DEBUG)
                   else "django.contrib.staticfiles.storage.StaticFilesStorage")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": _STATIC_BACKEND},
}
MEDIA_URL = "media/"
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")

# Django itself serves uploaded images. Enough for a team's server; a large deployment turns it off and lets its
# web server (nginx, a CDN) serve MEDIA_ROOT.
GALAXY_SERVE_FILES = env_bool("GALAXY_SERVE_FILES", DEBUG)


def _proxy_ssl_header() -> tuple[str, str] | None:
    name = (env_str("DJANGO_SECURE_PROXY_SSL_HEADER") or "").strip()
    if not name:
        return None
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise ImproperlyConfigured(
            f"DJANGO_SECURE_PROXY_SSL_HEADER={name!r} is not an HTTP header name: name the header your TLS proxy "
            "sets, e.g. X-Forwarded-Proto"
        )
    return "HTTP_" + name.upper().replace("-", "_"), "https"


# HTTPS. Outside DEBUG the site is HTTPS only: plain-HTTP requests are redirected, HSTS tells browsers to use HTTPS
# for a year, and the session and CSRF cookies never travel over plain HTTP. `manage.py check --deploy` is clean
# with these defaults. A server that really is plain HTTP on a loopback address (a test running gunicorn on
# 127.0.0.1) opts out with DJANGO_SECURE_SSL_REDIRECT=0 and DJANGO_SECURE_COOKIES=0, and check --deploy says so.
# X_FRAME_OPTIONS ("DENY"), SECURE_REFERRER_POLICY ("same-origin") and nosniff keep Django's defaults.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# "preload" only declares consent: the domain joins the browsers' built-in HTTPS-only list once someone submits it
# at hstspreload.org, and leaving that list takes months. Set 0 for a domain that must never be listed (check
# --deploy then warns W021; silence it in SILENCED_SYSTEM_CHECKS if that is the decision).
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
# Behind a proxy that terminates TLS (nginx, Caddy, Traefik, a load balancer) requests reach gunicorn as plain HTTP,
# so Django would take every one for insecure and SECURE_SSL_REDIRECT would redirect for ever. Name the header the
# proxy sets (DJANGO_SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto) and Django trusts "https" in it. Opt-in, because it
# is safe only when the proxy always sets (or strips) that header and nothing else can reach the application:
# otherwise any client could claim HTTPS.
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()

# Sign-in lockouts (django-axes, labeling/lockouts.py): after GALAXY_LOGIN_FAILURE_LIMIT failed sign-ins for one user
# name, or from one address, every sign-in for that name or from that address is refused (429, the right password
# too) until GALAXY_LOGIN_LOCKOUT_MINUTES have passed since the last failure; an admin lifts a lock sooner by deleting
# it in the admin (Axes > Access attempts). The login page, the admin's and POST /api/auth/token/ all count.
# axes' backend comes first: it refuses a locked request before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("GALAXY_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("GALAXY_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
# Either is enough to lock: a user name guessed at from many addresses, or one address guessing many user names.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Tries while locked are refused without counting, so a lock ends at the time the page names, not later.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The client address by the rate limits' trusted-proxy rule (GALAXY_TRUSTED_PROXY_COUNT), never a client's header.
AXES_CLIENT_IP_CALLABLE = "labeling.lockouts.lockout_address"
AXES_USERNAME_CALLABLE = "labeling.lockouts.lockout_username"  # cut to a user name's length before it is stored
AXES_LOCKOUT_CALLABLE = "labeling.lockouts.lockout_response"
# No "AXES: BEGIN" line at the start of every manage.py command; failures and lockouts are still logged (WARNING).
AXES_VERBOSE = False

# Content-Security-Policy (django-csp): the pages load scripts, styles, images and data from this server only, run
# no inline script and no eval, and may not be framed. Style sheets and <style> elements: this server's only. Style
# attributes are allowed (style-src-attr): the pages draw data-driven widths with them (vote bars, job progress,
# cluster composition) and ECharts writes them into its tooltips. An attribute cannot run script, use a selector (the
# way CSS reads a page's secrets out) or load from anywhere img-src does not allow. The API's ReDoc page alone
# relaxes more (labeling/api/docs.py says why).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Images larger than this many pixels are refused at import: a decompression bomb would otherwise exhaust memory.
GALAXY_MAX_IMAGE_PIXELS = env_int("GALAXY_MAX_IMAGE_PIXELS", 25_000_000, minimum=1)
GALAXY_THUMBNAIL_SIZE = env_int("GALAXY_THUMBNAIL_SIZE", 128, minimum=16)
GALAXY_PAGE_SIZE = env_int("GALAXY_PAGE_SIZE", 60, minimum=1)

# The API (labeling/api/): "Authorization: Token <key>" for scripts or a browser session (with its CSRF token);
# who may call what is decided per view (labeling/api/permissions.py), never by a permissive default. Token comes
# first so that a request without credentials gets 401 with "WWW-Authenticate: Token", as HTTP clients expect.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["labeling.api.permissions.CanRead"],
    "DEFAULT_PAGINATION_CLASS": "labeling.api.pagination.Pages",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 100, minimum=1),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "labeling.api.errors.exception_handler",
    # ?format= names an export's file format (csv, jsonl), not a renderer; use the Accept header instead.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Galaxy labelling API",
    "DESCRIPTION": "Datasets, galaxies, decision trees, volunteer votes and classifications, expert and consensus "
                   "labels, clusterings, predictions, model versions, neighbours, jobs and streamed exports. "
                   "Authenticate with a browser session or with the header `Authorization: Token <key>` "
                   "(POST /api/auth/token/ gives a key).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    # The pages' JavaScript and styles come from static/vendor/, never from a CDN.
    "SWAGGER_UI_DIST": f"/{STATIC_URL}vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": f"/{STATIC_URL}vendor/swagger-ui/favicon-32x32.png",
    "REDOC_DIST": f"/{STATIC_URL}vendor/redoc",
}

# Background tasks: the database is the broker unless REDIS_URL names a Redis server.
_redis_url = env_str("REDIS_URL")
_task_timeout = env_int("Q_TIMEOUT", 3600, minimum=1)
Q_CLUSTER = {
    # The site's name: the broker's key prefix and the salt that signs task payloads, so every worker of the site
    # (CPU or GPU) must share it. Q_CLUSTER_NAME, read by django-q2 itself, picks which queue a worker serves.
    "name": env_str("Q_SITE_NAME", "galaxy-labeling"),
    "workers": env_int("Q_WORKERS", 1, minimum=1),
    "timeout": _task_timeout,
    # django-q2 requires retry > timeout, or a long task would be handed to a second worker while it still runs.
    "retry": _task_timeout + 60,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Background tasks",
}
# Jobs of GALAXY_GPU_JOB_KINDS go to the queue of the cluster GALAXY_GPU_CLUSTER (when set): workers started with
# Q_CLUSTER_NAME=<that name> on a machine with a GPU take them, the other workers never see them.
GALAXY_GPU_CLUSTER = env_str("GALAXY_GPU_CLUSTER", "")
GALAXY_GPU_JOB_KINDS = env_list("GALAXY_GPU_JOB_KINDS", ["retrain", "pretrain", "extract_features"])
# django-q2 looks a worker's own cluster up here whenever Q_CLUSTER_NAME differs from the site name.
Q_CLUSTER["ALT_CLUSTERS"] = {GALAXY_GPU_CLUSTER: {"workers": env_int("Q_GPU_WORKERS", 1, minimum=1)}} \
    if GALAXY_GPU_CLUSTER else {}
# Feature extraction of more galaxies than this is split into chunks of this size that workers take in parallel.
GALAXY_EXTRACT_CHUNK = env_int("GALAXY_EXTRACT_CHUNK", 2000, minimum=1)
if _redis_url:
    Q_CLUSTER["redis"] = _redis_url
else:
    Q_CLUSTER["orm"] = "default"

# Where feature vectors and neighbour indexes are kept (mlcore.features.store, mlcore.neighbours.index), one folder per
# feature set.
GALAXY_FEATURES_ROOT = env_path("GALAXY_FEATURES_ROOT", VAR_DIR / "features")
# From this many vectors "auto" builds a compressed IVF-PQ index (mlcore.neighbours.index) instead of an HNSW graph,
# whose float32 vectors and links cost about 2.2 GB per million 512-d vectors and hours to build at catalogue scale.
GALAXY_INDEX_IVFPQ_MIN = env_int("GALAXY_INDEX_IVFPQ_MIN", 1_000_000, minimum=1)
# The folder whose files admins may import from the Jobs page (a catalogue is copied here, or mounted, first): the
# page names files relative to it and refuses anything that resolves outside it.
GALAXY_IMPORT_ROOT = env_path("GALAXY_IMPORT_ROOT", VAR_DIR / "imports")
# A running job with no sign of life for this long is taken for dead (its worker on another machine was stopped).
GALAXY_JOB_STALE_SECONDS = env_int("GALAXY_JOB_STALE_SECONDS", 900, minimum=30)

# Torch threads used inside tasks, so that the web server and the worker do not fight over the cores.
TORCH_THREADS = env_int("TORCH_THREADS", 1, minimum=1)
# Processes a retrain cycle trains on, one per GPU (torchrun + DistributedDataParallel, see docs/commands.md,
# "Several GPUs"); 1 trains in the worker's own process. Set it on a GPU worker to its number of GPUs.
GALAXY_TRAIN_PROCESSES = env_int("GALAXY_TRAIN_PROCESSES", 1, minimum=1)

# Django's cache holds the volunteers' rate-limit counters (labeling/ratelimit.py). Every web process must see the
# same counters, or each of N gunicorn workers would allow the limit again: Redis when REDIS_URL names one (as in
# docker-compose.yml), else memory of this process, right for one process (runserver, the tests).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis_url,
                      "KEY_PREFIX": Q_CLUSTER["name"]} if _redis_url else
          {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "galaxy-labeling"}}


def _client_ip_header() -> str:
    name = (env_str("GALAXY_CLIENT_IP_HEADER") or "X-Forwarded-For").strip()
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise ImproperlyConfigured(f"GALAXY_CLIENT_IP_HEADER={name!r} is not an HTTP header name: name the header "
                                   "your proxy sets, e.g. X-Forwarded-For")
    return name


# Volunteers classify anonymously, so a script could open a fresh session per request. Answers are taken only for a
# galaxy offered to that session or user, once, within this many seconds of the offer (an abandoned tab's offer dies).
GALAXY_CLASSIFY_OFFER_TTL = env_int("GALAXY_CLASSIFY_OFFER_TTL", 4 * 3600, minimum=60)
# Rates of the classify endpoints (see docs/deployment.md, "Volunteers' limits"). A person takes 5-60 s per galaxy:
# 10 answers a minute lets the quickest keep up 6 s each. A classroom behind one address shares the address's rates.
# Offers (the next galaxy) come once per answer plus page loads, hence about twice to three times as many.
GALAXY_CLASSIFY_SUBMITS_PER_VOLUNTEER = env_rates("GALAXY_CLASSIFY_SUBMITS_PER_VOLUNTEER", "10/minute")
GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS = env_rates("GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS", "60/minute,600/hour")
GALAXY_CLASSIFY_OFFERS_PER_VOLUNTEER = env_rates("GALAXY_CLASSIFY_OFFERS_PER_VOLUNTEER", "30/minute")
GALAXY_CLASSIFY_OFFERS_PER_ADDRESS = env_rates("GALAXY_CLASSIFY_OFFERS_PER_ADDRESS", "120/minute,1200/hour")
# A client's address for those limits: REMOTE_ADDR, unless this many proxies of our own stand in front; then the
# address the outermost of them saw, read from the right of the header they append to (never what a client sent).
GALAXY_TRUSTED_PROXY_COUNT = env_int("GALAXY_TRUSTED_PROXY_COUNT", 0, minimum=0)
GALAXY_CLIENT_IP_HEADER = _client_ip_header()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # faiss reports at INFO which CPU-specific build it could not load before loading the generic one: noise.
    "loggers": {"faiss.loader": {"level": "WARNING"}},
}
