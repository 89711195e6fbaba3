"""Tests: the same real PostgreSQL (pgvector) and Redis as local, faster hashing."""

from __future__ import annotations

from neuronpedia.settings.base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
INFERENCE_DEVICE = "cpu"
STORAGES = {
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
