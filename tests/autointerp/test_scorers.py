"""Scoring: delphi detection/fuzzing against the fake server, embedding ROC-AUC, explicit failures."""

from __future__ import annotations

from typing import Any

import pytest

from autointerp import services
from autointerp.explainers import NP_MAX_ACT_LOGITS
from autointerp.scorers import DETECTION, EMBEDDING, FUZZ, ScoringSet, score_embedding
from features.models import ExplanationScore, ScoreStatus
from tests.autointerp.conftest import CAT_TEXTS, OTHER_TEXTS, _tokens, chat_reply, error_reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def cat_explanation(fake_llm: Any, cat_feature: Any) -> Any:
    return services.generate_explanation(
        feature=cat_feature, explainer_type=NP_MAX_ACT_LOGITS, model="fake-gpt", embed=False
    )


@pytest.mark.parametrize("score_type", [DETECTION, FUZZ])
def test_delphi_scorer_gives_balanced_accuracy_with_breakdown(cat_explanation: Any, score_type: str) -> None:
    row = services.score_explanation(explanation=cat_explanation, score_type=score_type)
    assert row.status == ScoreStatus.DONE, row.error
    assert row.value == pytest.approx(1.0)
    breakdown = row.json_details["breakdown"]
    assert len(breakdown) % 5 == 0
    assert {r["activating"] for r in breakdown} == {True, False}
    assert row.score_model_id == "fake-gpt"
    assert row.json_details["metric"] == "balanced_accuracy"


def test_llm_errors_are_dropped_not_counted_as_wrong(fake_llm: Any, cat_explanation: Any) -> None:
    fake_llm.reply_sequence(error_reply(500, "boom"), chat_reply("no list here"))
    row = services.score_explanation(explanation=cat_explanation, score_type=DETECTION)
    assert row.status == ScoreStatus.DONE
    assert row.value == pytest.approx(1.0)
    assert row.json_details["n_dropped"] == 10


def test_exhausted_key_marks_the_score_failed_and_retry_reuses_the_row(
    fake_llm: Any, cat_explanation: Any
) -> None:
    fake_llm.script = lambda body: error_reply(402, "Insufficient credits on this key")
    failed = services.score_explanation(explanation=cat_explanation, score_type=DETECTION)
    assert failed.status == ScoreStatus.FAILED
    assert failed.value is None
    assert "key exhausted (HTTP 402)" in failed.error
    fake_llm.reply_sequence()  # funded again
    retried = services.score_explanation(explanation=cat_explanation, score_type=DETECTION)
    assert retried.pk == failed.pk
    assert retried.status == ScoreStatus.DONE
    assert ExplanationScore.objects.filter(explanation=cat_explanation, score_type_id=DETECTION).count() == 1


def test_all_unparseable_answers_fail_with_the_reason(fake_llm: Any, cat_explanation: Any) -> None:
    fake_llm.script = lambda body: chat_reply("I think they are all about cats!")
    row = services.score_explanation(explanation=cat_explanation, score_type=FUZZ)
    assert row.status == ScoreStatus.FAILED
    assert "unparseable LLM output" in row.error


def _examples(texts: list[str], word: str | None) -> tuple[Any, ...]:
    from autointerp.examples import Example

    out = []
    for text in texts:
        toks = _tokens(text)
        out.append(Example(tuple(toks), tuple(5.0 if word and word in t else 0.0 for t in toks)))
    return tuple(out)


def test_embedding_score_is_roc_auc_on_a_constructed_case() -> None:
    data = ScoringSet(activating=_examples(CAT_TEXTS, "cat"), non_activating=_examples(OTHER_TEXTS, None))
    good = score_embedding("cats, kittens and pet animals", data)
    assert good.value > 0.9
    bad = score_embedding("financial markets and interest rates", data)
    assert bad.value < 0.1
    assert good.details["metric"] == "roc_auc"
    assert len(good.details["breakdown"]) == 20


def test_embedding_score_is_stored_without_a_scorer_model(cat_explanation: Any) -> None:
    row = services.score_explanation(explanation=cat_explanation, score_type=EMBEDDING)
    assert row.status == ScoreStatus.DONE
    assert row.score_model_id is None
    assert row.value > 0.8


@pytest.mark.parametrize("score_type", [DETECTION, FUZZ])
def test_eleuther_scorers_send_delphis_own_prompts(
        fake_llm: Any, cat_explanation: Any, score_type: str) -> None:
    """Issue 16: eleuther_recall / eleuther_fuzz are delphi's DetectionScorer / FuzzingScorer (PyPI
    eai-delphi), not a re-implementation: the requests the OpenAI-compatible server sees carry delphi's
    system prompt and its generation template, with the explanation in it."""
    from autointerp.explainers import import_delphi

    import_delphi()
    if score_type == DETECTION:
        from delphi.scorers.classifier.prompts import detection_prompt as prompts
    else:
        from delphi.scorers.classifier.prompts import fuzz_prompt as prompts
    fake_llm.requests.clear()
    row = services.score_explanation(explanation=cat_explanation, score_type=score_type)
    assert row.status == ScoreStatus.DONE, row.error
    sent = fake_llm.chat_requests
    assert len(sent) == len(row.json_details["breakdown"]) // 5  # delphi's batches of 5
    for request in sent:
        messages = request["messages"]
        assert messages[0] == {"role": "system", "content": prompts.DSCORER_SYSTEM_PROMPT}
        head = prompts.GENERATION_PROMPT.split("{explanation}")[0]
        assert messages[-1]["content"].startswith(head + cat_explanation.description)
