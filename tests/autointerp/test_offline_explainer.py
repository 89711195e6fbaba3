"""The packaged SmolLM2-135M-Instruct writes a real explanation offline (loads a ~540 MB model)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from autointerp import services
from autointerp.explainers import NP_MAX_ACT_LOGITS
from autointerp.llm import LOCAL_MODEL

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_offline_smollm2_explainer_writes_a_real_explanation(cat_feature: Any, settings: Any) -> None:
    settings.NP_OPENAI_API_KEY = ""
    settings.NP_OPENAI_BASE_URL = "http://127.0.0.1:9/unreachable"  # never used
    started = time.perf_counter()
    explanation = services.generate_explanation(
        feature=cat_feature, explainer_type=NP_MAX_ACT_LOGITS, model=LOCAL_MODEL
    )
    elapsed = time.perf_counter() - started
    print(f"offline explanation {explanation.description!r} in {elapsed:.1f}s (incl. model load)")
    assert 2 <= len(explanation.description) <= 200
    assert explanation.explanation_model.display_name.startswith("SmolLM2-135M-Instruct")
    assert explanation.explainer_settings["max_examples"] == 5
    assert explanation.embedder == "all-MiniLM-L6-v2"
