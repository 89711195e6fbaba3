"""Explanation search (all / sources / model / release, 20 per page), and autointerp generate and score
against a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from autointerp import services as autointerp_services
from features.models import Explanation, ExplanationScore, ScoreStatus
from tests import factories
from tests.autointerp.conftest import CAT_TEXTS, OTHER_TEXTS, add_examples, error_reply

pytestmark = pytest.mark.django_db


def test_explanation_search_pages_of_twenty(catalog: dict[str, Any], anon: Any) -> None:
    source = catalog["source"]
    other = factories.make_source(factories.make_model("other-model"), layer=2, set_name="res-x")
    for i in range(25):
        feature = factories.make_feature(source, 1000 + i, max_act_approx=float(i))
        Explanation.objects.create(feature=feature, description=f"cats and kittens, variant {i}")
    Explanation.objects.create(feature=factories.make_feature(other, 1), description="cats on other model")
    autointerp_services.embed_explanations(explanations=Explanation.objects.all())

    first = anon.post("/api/explanation/search-all", {"query": "cats"}, format="json")
    assert first.status_code == 200, first.json()
    page = first.json()
    assert (page["resultsCount"], page["hasMore"], page["nextOffset"]) == (20, True, 20)
    assert page["request"] == {"query": "cats"}
    hit = page["results"][0]
    assert {"id", "modelId", "layer", "index", "description", "cosine_similarity", "neuron"} <= set(hit)
    rest = anon.post("/api/explanation/search-all", {"query": "cats", "offset": 20}, format="json").json()
    assert (rest["resultsCount"], rest["hasMore"]) == (6, False)
    ids = [r["id"] for r in page["results"] + rest["results"]]
    assert len(set(ids)) == 26

    in_source = anon.post("/api/explanation/search", {"modelId": "gpt2-small", "layers": ["6-res-jb"],
                                                       "query": "kittens", "offset": 20},
                          format="json").json()
    assert in_source["resultsCount"] == 5
    assert {r["modelId"] for r in in_source["results"]} == {"gpt2-small"}
    by_model = anon.post("/api/explanation/search-model", {"modelId": "other-model", "query": "cats"},
                         format="json").json()
    assert [r["description"] for r in by_model["results"]] == ["cats on other model"]
    assert by_model["results"][0]["neuron"]["maxActApprox"] is None
    by_release = anon.post("/api/explanation/search-release",
                           {"releaseName": "res-jb-release", "query": "cats"}, format="json").json()
    assert by_release["resultsCount"] == 20
    assert by_release["hasMore"]

    assert anon.post("/api/explanation/search-all", {"query": "ab"}, format="json").status_code == 400
    assert anon.post("/api/explanation/search-model", {"modelId": "nope", "query": "cats"},
                     format="json").status_code == 404
    assert anon.post("/api/explanation/search",
                     {"modelId": "gpt2-small", "layers": ["9-nope"], "query": "cats"},
                     format="json").status_code == 404
    assert anon.post("/api/explanation/search-release", {"releaseName": "nope", "query": "cats"},
                     format="json").status_code == 404


@pytest.fixture
def cat_feature(catalog: dict[str, Any]) -> Any:
    feature = factories.make_feature(catalog["source"], 7, pos_str=[" purr"], pos_values=[1.0])
    add_examples(feature, CAT_TEXTS, "cat")
    other = factories.make_feature(catalog["source"], 8)
    add_examples(other, OTHER_TEXTS, None)
    for i, row in enumerate(other.activations.all()):
        row.values = [0.0] * (len(row.tokens) - 1) + [1.0 + i]
        row.max_value, row.max_value_token_index = 1.0 + i, len(row.tokens) - 1
        row.save()
    return feature


def test_generate_retries_after_a_failure_and_refuses_duplicates(cat_feature: Any, fake_llm: Any,
                                                                 alice_api: Any, anon: Any) -> None:
    body = {"modelId": "gpt2-small", "layer": "6-res-jb", "index": 7, "explanationType": "np_max-act-logits",
            "explanationModelName": "fake-gpt"}
    assert anon.post("/api/explanation/generate", body, format="json").status_code == 401

    fake_llm.reply_sequence(error_reply(401, "invalid api key"))
    failed = alice_api.post("/api/explanation/generate", body, format="json")
    assert failed.status_code == 502, failed.json()
    assert "rejected" in failed.json()["message"]
    assert not Explanation.objects.filter(feature=cat_feature).exists()

    done = alice_api.post("/api/explanation/generate", body, format="json")
    assert done.status_code == 200, done.json()
    explanation = done.json()["explanation"]
    assert explanation["description"] == "mentions of cats"
    assert (explanation["typeName"], explanation["explanationModelName"]) == ("np_max-act-logits", "fake-gpt")
    assert Explanation.objects.get(pk=explanation["id"]).embedding is not None

    duplicate = alice_api.post("/api/explanation/generate", body, format="json")
    assert duplicate.status_code == 400
    assert "already exists" in duplicate.json()["message"]
    assert alice_api.post("/api/explanation/generate", {**body, "explanationType": "oai_nope"},
                          format="json").status_code == 400
    assert alice_api.post("/api/explanation/generate", {**body, "index": 999},
                          format="json").status_code == 404


def test_a_failed_score_is_reported_and_can_be_retried(cat_feature: Any, fake_llm: Any,
                                                       alice_api: Any) -> None:
    explanation = Explanation.objects.create(feature=cat_feature, description="mentions of cats")
    body = {"explanationId": str(explanation.pk), "scorerModel": "fake-gpt", "scorerType": "eleuther_recall"}

    fake_llm.script = lambda _body: error_reply(401, "invalid api key")
    failed = alice_api.post("/api/explanation/score", body, format="json")
    assert failed.status_code == 502, failed.json()
    assert failed.json()["message"].startswith("Scoring failed: provider key rejected")
    assert failed.json()["score"]["status"] == ScoreStatus.FAILED
    assert ExplanationScore.objects.get().status == ScoreStatus.FAILED

    fake_llm.reply_sequence()  # smart replies from now on
    retried = alice_api.post("/api/explanation/score", body, format="json")
    assert retried.status_code == 200, retried.json()
    score = retried.json()["score"]
    assert score["status"] == "DONE"
    assert score["value"] > 0.8
    assert score["explanationScoreTypeName"] == "eleuther_recall"
    assert isinstance(score["jsonDetails"], str)
    assert ExplanationScore.objects.count() == 1

    again = alice_api.post("/api/explanation/score", body, format="json")
    assert again.status_code == 400
    assert "already exists" in again.json()["message"]
    assert alice_api.post("/api/explanation/score", {**body, "scorerType": "no_such_scorer"},
                          format="json").status_code == 400
    assert alice_api.post("/api/explanation/score", {**body, "explanationId": "99999"},
                          format="json").status_code == 404
