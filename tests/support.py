"""Helpers shared by tests that start real processes (workers, servers) against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.db import connection


def child_database_url() -> str:
    """The test database as a DATABASE_URL a child process can use, password included (the embedded
    PostgreSQL requires one since its app role exists)."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = db.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


ROOT = Path(__file__).resolve().parents[1]
# Fast healing for tests that kill workers: heartbeats every second, stale (re-queued by beat) after three.
HEAL_FAST = {"NP_JOB_HEARTBEAT_SECONDS": "1", "NP_JOB_STALE_AFTER_SECONDS": "3"}


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process that works on the test database and the tests' Redis db."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "neuronpedia.settings.test",
            "DATABASE_URL": child_database_url(), "OMP_NUM_THREADS": "1", **extra}


def celery_worker(*queues: str, name: str, beat_dir: Path | None = None, **env: str) -> subprocess.Popen:
    """A real `celery worker` on `queues` (solo pool), in its own process group; with `beat_dir` it also
    runs Celery beat (the stale-job sweeper)."""
    beat = ["-B", "-s", str(beat_dir / f"beat-{name}")] if beat_dir is not None else []
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "neuronpedia", "worker", "-Q", ",".join(queues), *beat,
         "--pool", "solo", "--without-mingle", "--without-gossip", "-n", f"{name}@%h",
         "--loglevel", "WARNING"],
        cwd=ROOT, env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)


def manage_process(*args: str, **env: str) -> subprocess.Popen:
    """`manage.py <args>` as a child process (e.g. the inference worker), in its own process group."""
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=child_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def inference_worker_process(config: Path | str, name: str, **env: str) -> subprocess.Popen:
    """The real inference worker (`manage.py inference_worker`) on the test database, with 1 s heartbeats,
    in its own process group; stop it with `stop` (or `kill` to test a dead worker)."""
    return manage_process("inference_worker", "--config", str(config), "--name", name,
                          "--loglevel", "WARNING", **{"INFERENCE_HEARTBEAT_SECONDS": "1", **env})


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (a worker's beat, its pool): no clean-up runs."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def stop(proc: subprocess.Popen) -> str:
    """Stop the process group politely (SIGKILL after 20 s) and return what it printed."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)[0] or ""
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate(timeout=10)[0] or ""


def wait_until(condition: Callable[[], Any], what: str, *, timeout: float = 180, interval: float = 0.05,
               alive: tuple[subprocess.Popen, ...] = ()) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` (and the output of any process
    in `alive` that died meanwhile) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        for proc in alive:
            if proc.poll() is not None:
                raise AssertionError(f"waiting for {what}: a process died:\n{proc.communicate()[0]}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
