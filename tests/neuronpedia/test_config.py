"""Bad configuration fails fast with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neuronpedia.lib import env

ROOT = Path(__file__).resolve().parents[2]


def _clean_env(**extra_env: str) -> dict[str, str]:
    # the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE must not leak into deployment checks
    return {k: v for k, v in {**os.environ, **extra_env}.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}


def _manage(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, env=_clean_env(**extra_env))


def test_unreachable_database_url_is_one_line_and_exit_1() -> None:
    result = _manage("migrate", "--check", DATABASE_URL="postgres://u@127.0.0.1:9/nope")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach PostgreSQL at 127.0.0.1:9/nope (DATABASE_URL)")


def test_malformed_redis_url_is_one_line_and_exit_1() -> None:
    result = _manage("migrate", "--check", REDIS_URL="http://localhost:6379")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: REDIS_URL must start with redis:// or rediss:// (got 'http://localhost:6379')"]


def test_malformed_database_url_is_one_line() -> None:
    result = _manage("migrate", "--check", DATABASE_URL="mysql://x@y/z")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: DATABASE_URL must start with postgres:// (got mysql scheme)"


def test_production_settings_pass_the_deploy_check() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING",
                     DJANGO_SETTINGS_MODULE="neuronpedia.settings.production",
                     DJANGO_SECRET_KEY="k3y-" + "abcdefghij" * 6, DJANGO_ALLOWED_HOSTS="example.org",
                     DATABASE_URL="postgres://np@db:5432/np")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_boot_without_a_secret_key() -> None:
    extra = {"DJANGO_SETTINGS_MODULE": "neuronpedia.settings.production",
             "DJANGO_ALLOWED_HOSTS": "example.org", "DATABASE_URL": "postgres://np@db:5432/np"}
    environment = {k: v for k, v in _clean_env(**extra).items() if k != "DJANGO_SECRET_KEY"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, text=True,
                            capture_output=True, timeout=60, env=environment)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: DJANGO_SECRET_KEY is required but not set (see .env.example)"


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("0", False), ("Yes", True)])
def test_booleans_are_parsed_strictly(monkeypatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("NP_FLAG", raw)
    assert env.get_bool("NP_FLAG", default=False) is expected


def test_a_non_boolean_is_an_error(monkeypatch) -> None:
    monkeypatch.setenv("NP_FLAG", "maybe")
    with pytest.raises(env.ConfigError, match="not a boolean"):
        env.get_bool("NP_FLAG", default=False)


def test_file_variant_wins_for_docker_secrets(monkeypatch, tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    monkeypatch.setenv("NP_SECRET", "from-env")
    monkeypatch.setenv("NP_SECRET_FILE", str(secret))
    assert env.get("NP_SECRET") == "from-file"


def child_database_url_is_parsed_into_django_settings() -> None:
    db = env.parse_database_url("postgresql://np:p%40ss@db.example:6543/neuro")
    assert (db.host, db.port, db.name, db.user, db.password) == (
        "db.example", 6543, "neuro", "np", "p@ss")


def test_celery_worker_with_malformed_redis_url_fails_in_one_line() -> None:
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "neuronpedia", "worker"],
                            cwd=ROOT, text=True, capture_output=True, timeout=60,
                            env={**os.environ, "REDIS_URL": "http://x"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: REDIS_URL must start with redis:// or rediss:// (got 'http://x')")
