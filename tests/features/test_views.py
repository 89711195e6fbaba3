from __future__ import annotations

import pytest

from features.models import Explanation, ExplanationScore, ExplanationScoreType

pytestmark = pytest.mark.django_db


def test_feature_page_shows_activations_logits_and_explanations(client, catalog) -> None:
    feature = catalog["feature"]
    explanation = Explanation.objects.create(feature=feature, description="mentions of France")
    fuzz = ExplanationScoreType.objects.create(name="eleuther_fuzz")
    ExplanationScore.objects.create(explanation=explanation, score_type=fuzz, status="DONE",
                                    value=0.82)
    response = client.get("/gpt2-small/6-res-jb/200")
    assert response.status_code == 200
    body = response.content.decode()
    assert "mentions of France" in body
    assert "eleuther_fuzz 0.82" in body
    assert " Paris" in body
    assert " capital" in body
    assert body.index('data-max="9.5"') < body.index('data-max="4.0"')  # sorted by max value


def test_feature_page_is_a_few_queries(client, catalog, django_assert_max_num_queries) -> None:
    with django_assert_max_num_queries(5):
        assert client.get("/gpt2-small/6-res-jb/200").status_code == 200


@pytest.mark.parametrize("url", ["/gpt2-small/6-res-jb/999", "/gpt2-small/9-nope/1", "/nope/"])
def test_unknown_feature_source_or_model_is_404(client, catalog, url: str) -> None:
    assert client.get(url).status_code == 404


def test_home_model_and_source_pages_render(client, catalog) -> None:
    assert b"GPT-2 Small" in client.get("/").content
    assert b"6-res-jb" in client.get("/gpt2-small/").content
    assert b"/gpt2-small/6-res-jb/200" in client.get("/gpt2-small/6-res-jb/").content
