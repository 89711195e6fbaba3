"""The offline explainer (autointerp/offline.py): token analysis, held-out scoring, the constrained LLM
candidate, storing method + score, and bad input that stores nothing.

The LLM in these tests is the FAKE OpenAI-compatible server of conftest.py (real HTTP, scripted replies):
it checks the protocol and the parsing/rejection rules, never the quality of explanations. Embeddings are
the real local all-MiniLM-L6-v2.
"""

from __future__ import annotations

from typing import Any

import pytest

from autointerp import offline, phrasing, services
from autointerp.examples import Example
from autointerp.explainers import OFFLINE
from autointerp.llm import LOCAL_MODEL, OpenAIChat, ProviderConfig
from features.models import Explanation, ExplanationScore, ScoreStatus
from tests import factories

FILLER = ["and", "then", "we", "went", "home", "after", "a", "long", "day", "at", "the", "office",
          "with", "friends"]
FILL = tuple(" " + w for w in FILLER)


def _tokens(words: list[str]) -> tuple[str, ...]:
    return tuple([words[0]] + [" " + w if w[0].isalnum() else w for w in words[1:]])


def dateline(city: str, month: str, day: str) -> Example:
    """`CITY, MONTH DAY (AP) -- filler...` tokenised like the demo model does: " (", "AP", ")"."""
    tokens = (*_tokens([city + ",", month, day]), " (", "AP", ")", " --", *FILL * 2)
    values = tuple(9.0 if t == "AP" else (2.0 if t == ")" else 0.0) for t in tokens)
    return Example(tokens, values)


def number_example(n: str) -> Example:
    tokens = (*_tokens(["the", "report", "said", "that"]), " " + n, *FILL * 2)
    return Example(tokens, tuple(6.0 if t == " " + n else 0.0 for t in tokens))


CITIES = ["Dallas", "Boston", "Denver", "Austin", "Miami", "Salem", "Tulsa", "Reno", "Macon", "Akron"]


def test_split_is_by_rank_and_held_out_examples_are_never_seen() -> None:
    top = [dateline(c, "May", str(i)) for i, c in enumerate(CITIES)]
    split = offline.split_examples(top, top[:4])
    assert split.seen[:5] == tuple(top[0::2])
    assert split.held_out[:5] == tuple(top[1::2])
    assert not set(split.seen[: split.n_seen_top]) & set(split.held_out)


def test_non_activating_windows_are_text_where_the_feature_is_exactly_zero() -> None:
    windows = offline.non_activating_windows([dateline("Dallas", "May", "1")])
    assert windows
    assert all("AP" not in w and ")" not in w for w in windows)


def test_analysis_names_the_dominant_token_and_its_shared_context() -> None:
    examples = [dateline(c, "March", "17") for c in CITIES]
    a = offline.analyse(examples)
    assert a.dominant == "AP"
    assert a.share == 1.0
    assert a.contexts == [("in news-wire datelines", 1.0)]  # implies "in parentheses", after a date
    candidates = offline.analysis_candidates(a, context=None)
    assert candidates[0] == '"AP" in news-wire datelines'
    assert '"AP"' not in candidates  # a dominant word comes with its context


def test_analysis_of_mixed_numbers_says_numbers() -> None:
    examples = [number_example(n) for n in ["1960", "12", "3", "450", "7", "1,000", "88", "2"]]
    a = offline.analyse(examples)
    assert a.dominant is None
    assert a.token_class == ("numbers", 1.0)
    assert any(c.startswith("numbers") for c in offline.analysis_candidates(a, None))


def test_sub_word_pieces_are_joined_into_the_word() -> None:
    ex = Example(("He", " met", " Mc", "A", "uliffe", " today"), (0, 0, 0, 5.0, 0, 0))
    assert phrasing.peak_word(ex, 3)[0] == " McAuliffe"


def test_offline_explainer_picks_a_candidate_naming_the_token_and_scores_it_held_out() -> None:
    top = [dateline(c, m, d) for c in CITIES for m, d in (("May", "1"), ("Oct.", "24"))][:16]
    split = offline.split_examples(top, ())
    result = offline.explain_offline(split, backend=None)
    assert result.method == offline.METHOD_ANALYSIS
    assert "AP" in result.text
    details = offline.held_out_scorer(split).details(result.text)
    assert details["examples"] == "held-out"
    assert details["n_activating"] == len(split.held_out)
    assert 0.0 <= details["value"] <= 1.0


def test_auroc_counts_ties_half() -> None:
    import numpy as np

    assert offline.auroc(np.array([1.0, 2.0]), np.array([0.0])) == 1.0
    assert offline.auroc(np.array([1.0]), np.array([1.0])) == 0.5


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("the report said that 1960 and then we went home", "too long"),
        ("we went home", "echoes"),
        ("<<1960>> numbers", "copies"),
    ],
)
def test_llm_labels_that_echo_the_examples_or_ramble_are_rejected(raw: str, reason: str) -> None:
    examples = [number_example("1960")]
    with pytest.raises(offline.RejectedOutput, match=reason):
        offline.parse_llm_label(raw, examples)


def test_llm_label_is_cleaned() -> None:
    assert offline.parse_llm_label('Label: "years and numbers".\nmore', [number_example("1960")]) == (
        "years and numbers"
    )


def test_llm_candidate_over_an_openai_compatible_endpoint(fake_llm: Any) -> None:
    """Protocol only (FAKE server): the constrained prompt goes out, an echo is rejected, a label kept."""
    backend = OpenAIChat(ProviderConfig(base_url=fake_llm.base_url, api_key="sk-x", model="fake-gpt"))
    examples = [number_example(n) for n in ["1960", "12", "3", "450", "7", "1,000", "88", "2"]]
    split = offline.split_examples(examples, ())
    fake_llm.script = lambda body: (200, _chat("we went home after a long day"), {})
    echoed = offline.explain_offline(split, backend=backend, use_llm="always")
    assert any(c.method == "llm" and "echoes" in c.rejected for c in echoed.candidates)
    assert echoed.method == offline.METHOD_ANALYSIS
    sent = fake_llm.chat_requests[-1]
    assert sent["max_tokens"] == 12
    assert "<<" in sent["messages"][-1]["content"]
    fake_llm.script = lambda body: (200, _chat("quantities and years"), {})
    kept = offline.explain_offline(split, backend=backend, use_llm="always")
    assert any(c.method == "llm" and c.text == "quantities and years" for c in kept.candidates)


def _chat(text: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


# --- stored explanations -------------------------------------------------------------------------


@pytest.fixture
def ap_feature(catalog: dict[str, Any]) -> Any:
    feature = factories.make_feature(catalog["source"], 7)
    for i, city in enumerate(CITIES * 2):
        ex = dateline(city, "May", str(i + 1))
        factories.make_activation(feature, list(ex.tokens), [v * (1 - i / 40) for v in ex.values])
    return feature


@pytest.mark.django_db
def test_np_offline_stores_method_and_a_held_out_score(ap_feature: Any, settings: Any) -> None:
    settings.NP_OPENAI_BASE_URL = "http://127.0.0.1:9/never-used"
    explanation = services.generate_explanation(feature=ap_feature, explainer_type=OFFLINE, model=LOCAL_MODEL)
    assert "AP" in explanation.description
    assert explanation.method == offline.METHOD_ANALYSIS
    assert explanation.score is not None
    assert explanation.score_type_name == "eleuther_embedding"
    row = ExplanationScore.objects.get(explanation=explanation, score_type_id="eleuther_embedding")
    assert row.status == ScoreStatus.DONE
    assert row.value == explanation.score
    assert row.json_details["examples"] == "held-out"
    assert row.json_details["scorer_version"] == offline.SCORER_VERSION
    assert explanation.explainer_settings["offline"]["analysis"]["dominant"] == "AP"

    # the text changes -> the score is stale and is recomputed on the same row
    Explanation.objects.filter(pk=explanation.pk).update(description="weather in the mountains")
    explanation.refresh_from_db()
    again = services.score_explanation(explanation=explanation, score_type="eleuther_embedding")
    assert again.pk == row.pk
    assert again.json_details["explanation_text"] == "weather in the mountains"
    explanation.refresh_from_db()
    assert explanation.score == again.value


@pytest.mark.django_db
def test_bad_input_stores_nothing(catalog: dict[str, Any], ap_feature: Any) -> None:
    empty = factories.make_feature(catalog["source"], 99)
    with pytest.raises(ValueError, match="no activating examples"):
        services.generate_explanation(feature=empty, explainer_type=OFFLINE, model=LOCAL_MODEL)
    with pytest.raises(ValueError, match="unknown explainer"):
        services.generate_explanation(feature=ap_feature, explainer_type="nope", model=LOCAL_MODEL)
    with pytest.raises(ValueError, match="offline"):
        services.generate_explanation(feature=ap_feature, explainer_type=OFFLINE, model="gpt-4o-mini")
    assert not Explanation.objects.exists()


@pytest.mark.django_db
def test_a_score_batch_recomputes_scores_of_an_older_scorer(ap_feature: Any) -> None:
    from autointerp.batch import BatchParams, start_autointerp_batch

    explanation = services.generate_explanation(feature=ap_feature, explainer_type=OFFLINE, model=LOCAL_MODEL)
    row = ExplanationScore.objects.get(explanation=explanation, score_type_id="eleuther_embedding")
    ExplanationScore.objects.filter(pk=row.pk).update(json_details={"scorer_version": "old"}, value=0.1)
    params = BatchParams(action="score", feature_ids=(ap_feature.pk,), explainer_type=OFFLINE,
                         model=LOCAL_MODEL, score_types=("eleuther_embedding",))
    job = start_autointerp_batch(params=params, run_now=True)
    assert job.status == "DONE", job.error
    assert job.result["succeeded"] == 1
    row.refresh_from_db()
    assert row.json_details["scorer_version"] == offline.SCORER_VERSION
    explanation.refresh_from_db()
    assert explanation.score == row.value != 0.1
