"""Scratch databases, our management commands, constants and the step table."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]

HOST, PORT = "127.0.0.1", 54329
SRC, OURS, DST = "np_upstream_src", "np_upstream_ours", "np_upstream_dst"
DST_SQL, DST_THEIRS, DST_CONV = "np_upstream_dst_sql", "np_upstream_dst_theirs", "np_upstream_dst_conv"
VENV = Path("/tmp/np_upstream_venv")
WORK = Path("/tmp/np_upstream_run")
MODEL, RELEASE, SET = "gpt2-small", "np-bench-release", "res-bench"
SOURCE, SOURCE2, SOURCE2_FEATURES = "6-res-bench", "7-res-bench", 300  # the second: NULL saelensConfig...
SOURCE3 = "8-res-bench"  # 5 features, steering vectors only: no activations, no explanations
SOURCES = (SOURCE, SOURCE2, SOURCE3)
DEFAULT_CREATOR = "clkht01d40000jv08hvalcvly"  # one of their PUBLIC_ACTIVATION_USER_IDS
PUBLIC_USER, PRIVATE_USER = "clsxqq2xd0000vvp2k5itlhqj", "cprivateuser0000000000000"
EXPORTER = "utils/neuronpedia-utils/neuronpedia_utils/export-data.py"
CONVERTER = "utils/neuronpedia-utils/neuronpedia_utils/convert-saedashboard-to-neuronpedia-export.py"
# the columns their exporter writes per batch table (export-data.py's lists), read from the file at run time
EXPORT_LIST_RE = re.compile(r'write_batch_to_jsonl\(\s*"(\w+)",\s*\[(.*?)\]', re.S)

ROWS: list[tuple[str, str, str]] = []


def step(name: str, seconds: float, result: str) -> None:
    ROWS.append((name, f"{seconds:8.2f}", result))
    print(f"  {name}: {result} ({seconds:.2f} s)", flush=True)


def creds() -> dict[str, str]:
    return json.loads((ROOT / ".data" / "postgres-credentials.json").read_text())


def connect(db: str) -> psycopg.Connection[Any]:
    c = creds()
    return psycopg.connect(
        host=HOST,
        port=PORT,
        user=c["superuser"],
        password=c["superuser_password"],
        dbname=db,
        autocommit=True,
    )


def recreate(db: str, owner: str | None = None) -> None:
    with connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"' + (f' OWNER "{owner}"' if owner else ""))


def drop(db: str) -> None:
    with connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def apply_migrations(checkout: Path, db: str) -> int:
    recreate(db)
    paths = sorted((checkout / "apps/webapp/prisma/migrations").glob("*/migration.sql"))
    with connect(db) as conn:
        for path in paths:
            conn.execute(path.read_text())
    return len(paths)


# ---------------------------------------------------------------- our commands (subprocesses: killable)


def django_env() -> dict[str, str]:
    c = creds()
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{c['app_user']}:{c['app_password']}@{HOST}:{PORT}/{OURS}",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "PYTHONUNBUFFERED": "1",
    }


def manage(*args: str, kill_after: str | None = None) -> tuple[int, str]:
    """Run `manage.py args`; with `kill_after`, SIGKILL it once a line of its output contains that text."""
    cmd = ["nice", "-n", "10", str(ROOT / ".venv/bin/python"), str(ROOT / "manage.py"), *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=django_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if kill_after and kill_after in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    return proc.returncode, "".join(lines)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


CONV_MODEL, CONV_SET, CONV_LAYER, CONV_SUFFIX = "pythia-70m-deduped", "bench-dash", 3, "l0_64"
CONV_SOURCE = f"{CONV_LAYER}-{CONV_SET}__{CONV_SUFFIX}"


def file_summary(base: Path) -> str:
    return "; ".join(f"{source}: {_source_files(base, source)}" for source in SOURCES)


def _source_files(base: Path, source: str, model: str = MODEL) -> str:
    folder = base / model / source
    parts = []
    for kind in ("features", "activations", "explanations"):
        files = sorted(folder.glob(f"{kind}/*.jsonl.gz"))
        parts.append(f"{kind} {len(files)} files/{sum(len(_jsonl(p)) for p in files)} rows")
    first = _jsonl(folder / "features" / "batch-0.jsonl.gz")
    return ", ".join(parts) + f"; features batch-0 starts {[r['index'] for r in first[:5]]}"


def timed(name: str, fn: Any, describe: Any = None) -> Any:
    t0 = time.monotonic()
    value = fn()
    step(name, time.monotonic() - t0, describe(value) if describe else str(value))
    return value
