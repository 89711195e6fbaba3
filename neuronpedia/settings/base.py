"""Settings shared by every environment. All configuration comes from the environment (.env.example)."""

from __future__ import annotations

from pathlib import Path

from neuronpedia import devservices
from neuronpedia.lib import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# --- Core ---------------------------------------------------------------------------------------
DEBUG = env.get_bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.get("DJANGO_SECRET_KEY", "insecure-local-development-key-change-me")
ALLOWED_HOSTS = env.get_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env.get_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
SITE_NAME = env.get("NP_SITE_NAME", "Neuronpedia (Python)")

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
]
THIRD_PARTY_APPS = ["rest_framework", "drf_spectacular", "django_htmx", "template_partials", "corsheaders"]
LOCAL_APPS = [
    "neuronpedia.accounts",
    "neuronpedia.jobs",
    "features",
    "transfer",
    "steering",
    "autointerp",
    "graphs",
    "inference",
    "neuronpedia.demo",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",  # outermost but one: refusals below it carry CORS headers too
    "neuronpedia.middleware.HostileInputMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "neuronpedia.urls"
WSGI_APPLICATION = "neuronpedia.wsgi.application"
ASGI_APPLICATION = "neuronpedia.asgi.application"

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
                "neuronpedia.context_processors.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# DATABASE_URL unset -> the project's embedded PostgreSQL + pgvector (see neuronpedia/devservices.py).
DATABASE_URL = devservices.database_url()
USES_EMBEDDED_POSTGRES = devservices.uses_embedded_postgres()
DATABASES = {"default": env.parse_database_url(DATABASE_URL).django()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's username/password backend plus sign-in throttling (neuronpedia/accounts/throttle.py)
AUTHENTICATION_BACKENDS = ["neuronpedia.accounts.throttle.ThrottledModelBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# --- I18N / static ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "neuronpedia.errors.csrf_failure"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.get("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = devservices.redis_url()
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ROUTES = ("neuronpedia.queues.route_task",)

# --- Cache ------------------------------------------------------------------------------------
# Django's Redis cache: API rate-limit counters, sign-in failure counts and cached page figures are
# shared by every web process. Short socket timeouts: the limiter fails open instead of hanging when
# Redis is unreachable (ratelimit.py).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    },
}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "neuronpedia.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "EXCEPTION_HANDLER": "neuronpedia.api_errors.exception_handler",
    # depth-limited JSON (a 400, not a RecursionError); forms for the browsable/multipart callers
    "DEFAULT_PARSER_CLASSES": [
        "neuronpedia.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Neuronpedia (Python) API",
    "DESCRIPTION": "Interpretability platform API, compatible with Neuronpedia's public API.",
    "VERSION": "0.1.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Product settings ---------------------------------------------------------------------------
INFERENCE_DEVICE = env.get("INFERENCE_DEVICE", "auto")
INFERENCE_HEARTBEAT_SECONDS = env.get_int("INFERENCE_HEARTBEAT_SECONDS", 15)
# A running job's heartbeat is touched every JOB_HEARTBEAT_SECONDS (a thread beside its body); Celery beat
# sweeps as often: a job silent for JOB_STALE_AFTER_SECONDS lost its worker and is re-queued to resume from
# its checkpoint, up to JOB_MAX_ATTEMPTS claims, then FAILED with the reason.
JOB_HEARTBEAT_SECONDS = env.get_int("NP_JOB_HEARTBEAT_SECONDS", 10)
JOB_STALE_AFTER_SECONDS = env.get_int("NP_JOB_STALE_AFTER_SECONDS", 2 * JOB_HEARTBEAT_SECONDS)
JOB_MAX_ATTEMPTS = env.get_int("NP_JOB_MAX_ATTEMPTS", 3)
# Celery beat (started by `bin/np up` and docker-compose) runs the stale-job sweeper.
CELERY_BEAT_SCHEDULE = {
    "heal-stale-jobs": {"task": "neuronpedia.jobs.tasks.heal_stale_jobs_task",
                        "schedule": float(JOB_HEARTBEAT_SECONDS),
                        "options": {"expires": float(JOB_HEARTBEAT_SECONDS)}},
}
# A worker's Redis liveness key lives this long (refreshed 4x per TTL): a killed worker is reported dead
# within it. Each model admits INFERENCE_QUEUE_LIMIT calls in flight; more get 503 + Retry-After.
INFERENCE_LIVENESS_TTL_SECONDS = env.get_int("INFERENCE_LIVENESS_TTL_SECONDS", 4)
INFERENCE_QUEUE_LIMIT = env.get_int("INFERENCE_QUEUE_LIMIT", 8)
INFERENCE_RETRY_AFTER_SECONDS = env.get_int("INFERENCE_RETRY_AFTER_SECONDS", 5)
# An inference worker re-checks a transcoder set that is still training this often (inference/tasks).
NP_TRANSCODER_POLL_SECONDS = env.get_float("NP_TRANSCODER_POLL_SECONDS", 10.0)
NP_DATA_DIR = devservices.data_dir()
# Neuronpedia export layout to import from: an http(s) base or a local folder (v1/ level).
NP_IMPORT_BASE = env.get("NP_IMPORT_BASE", "https://neuronpedia-datasets.s3.amazonaws.com/v1")
# The ASGI server's PostgreSQL pool: at most this many connections per web process (neuronpedia/asgi.py).
NP_ASGI_DB_POOL_MAX = env.get_int("NP_ASGI_DB_POOL_MAX", 16)

# --- Autointerp: LLM providers (read here once; autointerp/llm.py, autointerp/models.py) ----------------
# Fallback OpenAI-compatible endpoint when neither the user nor the admin stored a provider key.
NP_OPENAI_BASE_URL = env.get("NP_OPENAI_BASE_URL", "")
NP_OPENAI_API_KEY = env.get("NP_OPENAI_API_KEY", "")
NP_EXPLAINER_MODEL = env.get("NP_EXPLAINER_MODEL", "")
NP_SCORER_MODEL = env.get("NP_SCORER_MODEL", "")
# Encrypts stored provider keys; unset: derived from SECRET_KEY.
NP_PROVIDER_KEY_SECRET = env.get("NP_PROVIDER_KEY_SECRET", "")
# Converted model weights (the offline explainer's HF copy), outside the checkout.
NP_MODEL_CACHE = env.get("NP_MODEL_CACHE", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.get("NP_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Public API: docs without a CDN, rate limits (issue 8) ----------------------------------------
# Swagger UI and Redoc are served from the drf-spectacular-sidecar package (no CDN).
from neuronpedia.ratelimit import HIGHER_TIER, parse_rate_limits  # noqa: E402

THIRD_PARTY_APPS += ["drf_spectacular_sidecar"]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS
MIDDLEWARE += ["neuronpedia.ratelimit.RateLimitMiddleware"]
# Like Neuronpedia, /api answers cross-origin requests (notebooks, other sites' embeds): "*" or a comma
# separated list of origins; empty turns CORS off. Credentials (cookies) are never allowed cross-origin:
# the API authenticates with the x-api-key header.
NP_CORS_ALLOW_ORIGINS = [o.strip() for o in env.get("NP_CORS_ALLOW_ORIGINS", "*").split(",") if o.strip()]
# ... through django-cors-headers, on /api only; preflights are answered before rate limits and auth.
CORS_URLS_REGEX = r"^/api"
CORS_ALLOW_ALL_ORIGINS = "*" in NP_CORS_ALLOW_ORIGINS
CORS_ALLOWED_ORIGINS = [o for o in NP_CORS_ALLOW_ORIGINS if o != "*"]
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS = ("accept", "content-type", "x-api-key", "authorization")
CORS_EXPOSE_HEADERS = ("x-limit-remaining", "retry-after")
CORS_PREFLIGHT_MAX_AGE = 86400
SPECTACULAR_SETTINGS.update({
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"VisibilityEnum": "features.models.catalog.Visibility"},
})
# Requests per window, per API key (or per client IP when anonymous), per endpoint prefix; the longest
# matching prefix applies and 0 means unlimited. Defaults: Neuronpedia's hourly figures (ratelimit.py);
# NP_RATE_LIMITS="/api/steer=500,/api/list=100" overrides or adds prefixes.
NP_RATE_LIMIT_ENABLED = env.get_bool("NP_RATE_LIMIT_ENABLED", default=True)
NP_RATE_LIMIT_WINDOW_SECONDS = env.get_int("NP_RATE_LIMIT_WINDOW_SECONDS", 3600)
NP_RATE_LIMITS = parse_rate_limits(env.get("NP_RATE_LIMITS", ""))
# The "higher" tier, for API keys an administrator allow-listed (ApiKey.higher_limits): Neuronpedia's
# higher figures, never below the normal limit; NP_RATE_LIMITS_HIGHER overrides it the same way.
NP_RATE_LIMITS_HIGHER = parse_rate_limits(
    env.get("NP_RATE_LIMITS_HIGHER", ""),
    {p: 0 if n == 0 else max(n, HIGHER_TIER.get(p, 0)) for p, n in NP_RATE_LIMITS.items()},
    variable="NP_RATE_LIMITS_HIGHER")
NP_RATE_LIMIT_TRUST_X_FORWARDED_FOR = env.get_bool("NP_RATE_LIMIT_TRUST_X_FORWARDED_FOR", default=False)
NP_RATE_LIMIT_KEY_PREFIX = env.get("NP_RATE_LIMIT_KEY_PREFIX", "np:ratelimit")

# --- Abuse limits (issue 15) ------------------------------------------------------------------------
# Active API keys per user (rate limits count per user, whatever the key). Sign-in: after
# NP_LOGIN_MAX_FAILURES wrong passwords for one username from one address within NP_LOGIN_LOCKOUT_SECONDS,
# that pair is refused until the window passes.
NP_API_KEYS_PER_USER = env.get_int("NP_API_KEYS_PER_USER", 5)
NP_LOGIN_MAX_FAILURES = env.get_int("NP_LOGIN_MAX_FAILURES", 5)
NP_LOGIN_LOCKOUT_SECONDS = env.get_int("NP_LOGIN_LOCKOUT_SECONDS", 900)
