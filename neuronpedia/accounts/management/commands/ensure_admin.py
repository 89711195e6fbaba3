"""Create the local admin user and its API key once; both are kept in NP_DATA_DIR (mode 600) so that
every `bin/np up` can print them again."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from neuronpedia.accounts.models import ApiKey, hash_key
from neuronpedia.accounts.services import create_api_key


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    path.chmod(0o600)


class Command(BaseCommand):
    help = "Create the 'admin' superuser and an API key if missing, and print both."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        password_file = settings.NP_DATA_DIR / "admin-password"
        key_file = settings.NP_DATA_DIR / "admin-api-key"
        user = user_model.objects.filter(username="admin").first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(12)
            user, _ = user_model.objects.get_or_create(
                username="admin", defaults={"is_staff": True, "is_superuser": True})
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            _write_secret(password_file, password)
        password = password_file.read_text().strip()
        raw = key_file.read_text().strip() if key_file.exists() else ""
        if not raw or not ApiKey.objects.filter(key_hash=hash_key(raw), revoked_at=None).exists():
            _, raw = create_api_key(user=user, name="bin-np")
            _write_secret(key_file, raw)
        self.stdout.write(f"admin login: admin / {password}")
        self.stdout.write(f"API key (header x-api-key): {raw}")
