"""Tests: the same real PostgreSQL (pgvector) and Redis as local, faster hashing."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

from neuronpedia.lib import env
from neuronpedia.settings.base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
INFERENCE_DEVICE = "cpu"
STORAGES = {
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Tests use their own Redis database so a running dev worker never consumes their messages.
_redis = urlsplit(REDIS_URL)  # noqa: F405
REDIS_URL = urlunsplit(_redis._replace(path=f"/{env.get_int('NP_TEST_REDIS_DB', 15)}"))
CELERY_BROKER_URL = CELERY_RESULT_BACKEND = REDIS_URL
# The cache lives in that Redis database too, under a prefix of this test run (inherited by the processes it
# starts): a test database recreated with the same ids never reads figures cached by an earlier run.
os.environ.setdefault("NP_TEST_CACHE_PREFIX", f"test-{uuid.uuid4().hex[:12]}")
CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = os.environ["NP_TEST_CACHE_PREFIX"]  # noqa: F405
WHITENOISE_AUTOREFRESH = True
# The API rate limiter counts in Redis across runs; tests that exercise it switch it back on.
NP_RATE_LIMIT_ENABLED = False

# Several test runs can share one PostgreSQL: each picks its own test database (and Redis database above).
if env.get("NP_TEST_DB_NAME", ""):
    DATABASES["default"]["TEST"] = {"NAME": env.get("NP_TEST_DB_NAME", "")}  # noqa: F405
