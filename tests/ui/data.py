"""A small but complete catalog for the UI tests: every dashboard panel has data."""

from __future__ import annotations

from typing import Any

from features.models import (
    Eval,
    Explanation,
    ExplanationScore,
    ExplanationScoreType,
    ExplanationType,
    FeatureList,
    ListItem,
)
from tests import factories


def make_rich_catalog(owner: Any = None) -> dict[str, Any]:
    catalog = factories.make_catalog()
    source, feature = catalog["source"], catalog["feature"]
    source.saelens_config = {"d_in": 768, "d_sae": 16, "architecture": "standard"}
    source.dataset = "Skylion007/openwebtext"
    source.save()
    Eval.objects.create(source=source, type="core", output={"l0": 31.5, "explained_variance": 0.87})
    Eval.objects.create(source=source, type="training", output={"steps": 30000, "lr": 0.0004})
    feature.freq_hist_data_bar_values = [0.5, 1.5, 2.5, 3.5]
    feature.freq_hist_data_bar_heights = [40, 12, 5, 1]
    feature.logits_hist_data_bar_values = [-0.6, -0.2, 0.2, 0.6, 1.0]
    feature.logits_hist_data_bar_heights = [3, 20, 25, 9, 2]
    feature.topk_cos_sim_indices = [200, 201, 202]
    feature.topk_cos_sim_values = [1.0, 0.61, 0.42]
    feature.umap_x, feature.umap_y, feature.umap_cluster = 0.5, 0.5, 1
    feature.save()
    # interval bins below the top group
    long_tokens = [f" w{i}" for i in range(40)]
    long_values = [0.0] * 40
    long_values[30] = 2.2
    long_values[29] = 1.0
    factories.make_activation(feature, long_tokens, long_values, bin_min=1.9, bin_max=3.8, bin_contains=0.043)
    factories.make_activation(feature, ["a", "\n", " b", " Lyon"], [0.0, 0.0, 0.2, 1.1], bin_min=0.0,
                              bin_max=1.9, bin_contains=0.5)
    neighbour = factories.make_feature(source, 201, max_act_approx=3.0, frac_nonzero=0.01, umap_x=0.1,
                                       umap_y=0.9, umap_cluster=2)
    factories.make_feature(source, 202, max_act_approx=2.0, is_dead=True, umap_x=0.9, umap_y=0.1,
                           umap_cluster=2)
    expl_type = ExplanationType.objects.create(name="np_max-act-logits")
    explanation = Explanation.objects.create(feature=feature, description="mentions of France and Paris",
                                             type=expl_type, score_v1=0.8)
    fuzz = ExplanationScoreType.objects.create(name="eleuther_fuzz")
    ExplanationScore.objects.create(
        explanation=explanation, score_type=fuzz, status="DONE", value=0.82,
        json_details={"metric": "balanced_accuracy", "n_examples": 2, "breakdown": [
            {"text": "The capital of France", "activating": True, "prediction": True, "correct": True},
            {"text": "I like turtles", "activating": False, "prediction": True, "correct": False}]})
    Explanation.objects.create(feature=neighbour, description="Italian cities")
    result = {**catalog, "neighbour": neighbour, "explanation": explanation}
    if owner is not None:
        feature_list = FeatureList.objects.create(owner=owner, name="geography", visibility="PUBLIC")
        ListItem.objects.create(feature_list=feature_list, feature=neighbour, description="italy")
        result["list"] = feature_list
    return result
