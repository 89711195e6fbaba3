"""inference_worker is a plain library: torch, TransformerLens, SAE-Lens, numpy. Every module imports in a
fresh interpreter in which Django, Celery and the project's apps cannot be imported at all (its Celery task
modules live in the `inference` app)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANNED = ("django", "celery", "kombu", "redis", "features", "neuronpedia", "autointerp", "steering", "graphs",
          "inference")

PROBE = """
import importlib, importlib.abc, sys
BANNED = set(sys.argv[1].split(","))

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BANNED:
            raise ImportError(f"inference_worker must not import {name}")
        return None

sys.meta_path.insert(0, Blocker())
failed = []
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def _library_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "inference_worker").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_library_module_imports_without_django_celery_or_the_project() -> None:
    modules = _library_modules()
    assert "inference_worker.protocol" in modules
    assert "inference_worker.ops.steering" in modules
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(BANNED), *modules], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


def test_the_probe_refuses_a_module_that_imports_celery() -> None:
    allowed_app = ",".join(b for b in BANNED if b != "inference")  # the app's task module imports Celery
    proc = subprocess.run([sys.executable, "-c", PROBE, allowed_app, "inference.tasks.operations"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "must not import celery" in proc.stdout
