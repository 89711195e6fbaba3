"""The official Neuronpedia SDK's live-inference calls (activation/new, activation/source, search-all,
search-topk-by-token, steer, steer-chat) against a live server of ours backed by a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from features.models import Source
from neuronpedia.accounts.services import create_api_key
from steering.models import SteerOutput
from tests import factories
from tests.api_inference.conftest import MODEL_ID, SOURCE

SCRIPT = Path(__file__).with_name("sdk_inference_scenarios.py")
SDK_DIR = Path(os.environ.get("NP_SDK_DIR", Path.home() / ".cache/neuronpedia/sdk/neuronpedia-1.2.1"))
pytestmark = pytest.mark.skipif(not (SDK_DIR / "neuronpedia" / "requests" / "steer_request.py").is_file(),
                                reason="the neuronpedia SDK is not installed (bin/np setup installs it)")


def test_sdk_inference_calls(live: None, live_server: Any, django_user_model: Any, tmp_path: Path) -> None:
    user = django_user_model.objects.create_user("sdk-user", "sdk@example.com", "pw")
    factories.make_feature(Source.objects.get(model_id=MODEL_ID, name=SOURCE), 1)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE"}}
    env.update(NEURONPEDIA_API_KEY=create_api_key(user=user)[1], PYTHONPATH=str(SDK_DIR))
    done = subprocess.run([sys.executable, str(SCRIPT), f"{live_server.url}/api", MODEL_ID, SOURCE],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok"), done.stdout
    assert SteerOutput.objects.filter(creator=user).count() == 4  # a completion pair and a chat pair
