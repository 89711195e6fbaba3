"""The official Neuronpedia SDK (PyPI `neuronpedia`), unchanged, against a live server of ours: each
scenario of sdk_scenarios.py runs in its own interpreter (see its docstring for why and for the one
constant it replaces, the SDK's base URL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from features.models import Feature, FeatureList
from neuronpedia.accounts.services import create_api_key
from tests import factories

SCRIPT = Path(__file__).with_name("sdk_scenarios.py")
# The SDK is installed outside our virtualenv (bin/np setup: pip install --target), because its
# package name `neuronpedia` would shadow our project there.
SDK_DIR = Path(os.environ.get("NP_SDK_DIR", Path.home() / ".cache/neuronpedia/sdk/neuronpedia-1.2.1"))
pytestmark = pytest.mark.skipif(not (SDK_DIR / "neuronpedia" / "requests" / "base_request.py").is_file(),
                                reason="the neuronpedia SDK is not installed (bin/np setup installs it)")


@pytest.fixture
def run_sdk(live_server, transactional_db, django_user_model, tmp_path):
    user = django_user_model.objects.create_user("sdk-user", "sdk@example.com", "pw")
    factories.make_catalog()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE"}}
    env["NEURONPEDIA_API_KEY"] = create_api_key(user=user)[1]
    env["PYTHONPATH"] = str(SDK_DIR)

    def run(scenario: str) -> None:
        done = subprocess.run([sys.executable, str(SCRIPT), f"{live_server.url}/api", scenario], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip().endswith("ok"), done.stdout

    return run


def test_sdk_creates_model_source_set_and_uploads_features(run_sdk) -> None:
    run_sdk("byo")
    assert Feature.objects.get(source__name="1-pupscope", index=3).explanations.count() == 1


def test_sdk_lists_features_and_vectors(run_sdk) -> None:
    run_sdk("lists_vectors")
    assert FeatureList.objects.get(name="my list").items.count() == 1
    assert not Feature.objects.filter(has_vector=True).exists()


def test_sdk_sees_auth_and_rate_limit_errors(run_sdk, settings) -> None:
    settings.NP_RATE_LIMITS = {**settings.NP_RATE_LIMITS, "/api/list/list": 2}
    run_sdk("errors")
