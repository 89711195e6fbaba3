"""Neuronpedia's exporter and SAEDashboard converter, run unchanged in a throwaway virtualenv."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from upstream.common import (
    CONV_LAYER,
    CONV_MODEL,
    CONV_SET,
    CONVERTER,
    DEFAULT_CREATOR,
    EXPORT_LIST_RE,
    EXPORTER,
    HOST,
    MODEL,
    PORT,
    RELEASE,
    SRC,
    VENV,
    WORK,
    creds,
)
from upstream.seed import saedashboard_input

# ---------------------------------------------------------------- their exporter

STUB = '''"""Stub of `requests` for export-data.py: answers POST https://neuronpedia.org/api/global
offline."""
import json, os
class _Response:
    def __init__(self, data): self._data = data
    def json(self): return self._data
def post(url, *args, **kwargs):
    assert url == "https://neuronpedia.org/api/global", url
    return _Response(json.load(open(os.environ["NP_STUB_GLOBAL"])))
'''


def global_releases(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The part of /api/global the exporter reads: releases -> sourceSets -> sources."""
    releases = []
    for (name,) in conn.execute('SELECT name FROM "SourceRelease" ORDER BY name').fetchall():
        sets = []
        for model_id, set_name in conn.execute(
            'SELECT "modelId", name FROM "SourceSet" WHERE "releaseName" = %s', [name]
        ).fetchall():
            sources = [
                {"id": sid, "modelId": model_id}
                for (sid,) in conn.execute(
                    'SELECT id FROM "Source" WHERE "modelId" = %s AND "setName" = %s', [model_id, set_name]
                )
            ]
            sets.append({"name": set_name, "modelId": model_id, "sources": sources})
        releases.append({"name": name, "sourceSets": sets})
    return {"releases": releases}


def ensure_venv() -> None:
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [
            str(VENV / "bin" / "pip"),
            "install",
            "-q",
            "psycopg2-binary",
            "tqdm",
            "python-dotenv",
            "typer",
            "orjson",
        ],
        check=True,
        capture_output=True,
    )


def run_exporter(checkout: Path, conn: psycopg.Connection[Any]) -> Path:
    out = WORK / "their_export"
    shutil.rmtree(out, ignore_errors=True)
    (out / "stub").mkdir(parents=True)
    (out / "stub" / "requests.py").write_text(STUB)
    (out / "global.json").write_text(json.dumps(global_releases(conn)))
    c = creds()
    env = {
        **os.environ,
        "PYTHONPATH": str(out / "stub"),
        "NP_STUB_GLOBAL": str(out / "global.json"),
        "DATABASE_NAME": SRC,
        "DATABASE_USERNAME": c["superuser"],
        "DATABASE_PASSWORD": c["superuser_password"],
        "DATABASE_HOST": HOST,
        "DATABASE_PORT": str(PORT),
        "DEFAULT_CREATOR_ID": DEFAULT_CREATOR,
    }
    proc = subprocess.run(
        [
            "nice",
            "-n",
            "10",
            str(VENV / "bin" / "python"),
            str(checkout / EXPORTER),
            "-j",
            "1",
            "-r",
            RELEASE,
            "-m",
            MODEL,
        ],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
    )
    (out / "exporter.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or "Task failed" in proc.stdout:
        raise SystemExit(f"their exporter failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out / "exports"


def exported_columns(checkout: Path) -> dict[str, list[str]]:
    text = (checkout / EXPORTER).read_text()
    return {table: re.findall(r'"(\w+)"', body) for table, body in EXPORT_LIST_RE.findall(text)}


def run_converter(checkout: Path) -> Path:
    out = WORK / "converter"
    shutil.rmtree(out, ignore_errors=True)
    saedashboard_input(out / "saedashboard")
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout / "utils/neuronpedia-utils"),
        "DEFAULT_CREATOR_ID": DEFAULT_CREATOR,
    }
    args = {
        "saedashboard-output-dir": str(out / "saedashboard"),
        "creator-name": "Bench Lab",
        "release-id": "bench-dash-release",
        "release-title": "Bench dashboards",
        "url": "https://example.org",
        "model-name": CONV_MODEL,
        "neuronpedia-source-set-id": CONV_SET,
        "neuronpedia-source-set-description": "Residual Stream - 2k",
        "hf-weights-repo-id": "bench/saes",
        "hf-weights-path": "layer_3/width_2k/params.npz",
        "hook-point": "hook_resid_post",
        "layer-num": str(CONV_LAYER),
        "prompts-huggingface-dataset-path": "monology/pile-uncopyrighted",
        "n-prompts-total": "1024",
        "n-tokens-in-prompt": "16",
    }
    cmd = [
        str(VENV / "bin/python"),
        str(checkout / CONVERTER),
        *(f"--{k}={v}" for k, v in args.items()),
        "--zero-out-bos-token",
    ]
    proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    (out / "converter.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise SystemExit(f"their converter failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out / "exports"
