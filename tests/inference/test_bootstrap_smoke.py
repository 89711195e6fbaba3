"""Smoke test of `bin/np up`'s data steps on a reduced budget: the real demo model (SmolLM2 from its
PyPI package) in a real inference worker, dashboards through the job system, explanations by the offline
explainer in a real CPU worker; then the feature page shows activations and an explanation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils.html import escape

from features.models import Explanation, Feature, Source
from inference import demo
from tests.support import child_database_url

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def processes() -> Any:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "neuronpedia.settings.test",
           "INFERENCE_HEARTBEAT_SECONDS": "2",
           "DATABASE_URL": child_database_url()}
    commands = [
        [sys.executable, "manage.py", "inference_worker", "--config", str(demo.DEMO_CONFIG),
         "--name", "smoke-inference", "--loglevel", "WARNING"],
        [sys.executable, "-m", "celery", "-A", "neuronpedia", "worker", "-Q", "default",
         "--pool", "solo", "-n", "smoke-cpu@%h", "--without-mingle", "--without-gossip",
         "--loglevel", "WARNING"],
    ]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for cmd in commands]
    yield procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_demo_bootstrap_gives_a_feature_page_with_activations_and_an_explanation(
        processes: Any, client: Any, settings: Any) -> None:
    settings.INFERENCE_HEARTBEAT_SECONDS = 2
    call_command("bootstrap_demo", "--tokens", "4096", "--explain", "2", "--no-explain-rest",
                 "--worker-timeout", "600")
    source = Source.objects.get(model_id=demo.DEMO_MODEL_ID, name=demo.DEMO_SOURCE)
    assert source.has_dashboards
    explanation = Explanation.objects.filter(feature__source=source).select_related("feature").first()
    assert explanation is not None
    assert explanation.embedding is not None
    feature: Feature = explanation.feature
    assert feature.activations.exists()
    page = client.get(feature.get_absolute_url())
    assert page.status_code == 200
    body = page.content.decode()
    assert escape(explanation.description) in body
    top = feature.activations.order_by("-max_value").first()
    assert escape(top.tokens[top.max_value_token_index]) in body
    call_command("bootstrap_demo", "--tokens", "4096", "--explain", "2", "--no-explain-rest")  # again: no-op
    assert Explanation.objects.filter(feature__source=source).count() == 2
    assert explanation.method  # every explanation: its method and its score
    assert explanation.score is not None
