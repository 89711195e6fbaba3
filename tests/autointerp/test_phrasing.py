"""Phrasing of the offline explainer (autointerp/phrasing.py) on REAL top examples of the demo SAE.

fixtures/demo_sae_examples.json holds the top and quantile examples (windows of +-20 tokens around the
peak) of a few features of `15-res-demo` on SmolLM2-135M-Instruct, as the project's dashboards wrote them
(generate_dashboards over 204,800 Brown-corpus tokens). Feature 7 fires on "AP" in "(AP)" datelines,
73 on "the", 113/44/289 on numbers (digits, ordinals, years). Embeddings are the real local MiniLM.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from autointerp import offline, phrasing, services
from autointerp.examples import Example
from autointerp.explainers import OFFLINE, ExplainerSettings
from autointerp.llm import LOCAL_MODEL
from autointerp.search import search_explanations
from features.models import Explanation, ExplanationScore
from tests import factories

FIXTURE = Path(__file__).parent / "fixtures" / "demo_sae_examples.json"
NUMBER_FEATURES = (113, 44, 289)


@cache
def _demo() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())["features"]


def examples(index: int, group: str = "top") -> list[Example]:
    return [Example(tuple(e["tokens"]), tuple(e["values"])) for e in _demo()[str(index)][group]]


def split(index: int) -> offline.SplitExamples:
    pos = tuple(_demo()[str(index)]["pos_str"])
    return offline.split_examples(examples(index), examples(index, "quantile"), top_logits=pos)


def seen_analysis(index: int) -> phrasing.Analysis:
    return phrasing.analyse(split(index).seen_top)


@pytest.fixture(scope="module")
def minilm() -> Any:
    from autointerp.embedders import load_minilm

    return load_minilm()


# --- feature 7: "AP" in "(AP)" datelines ------------------------------------------------------------


def test_feature_7_names_ap_alone_as_the_dominant_word() -> None:
    a = seen_analysis(7)
    assert a.dominant == "AP"  # by activation mass: the "(AP)" peaks are the strongest
    assert a.top_tokens[1][0] == "A"  # the runner-up is not listed with it
    assert ("in news-wire datelines", pytest.approx(5 / 7)) in a.contexts


def test_feature_7_reads_as_ap_in_news_wire_datelines(minilm: Any) -> None:
    result = offline.explain_offline(split(7), backend=None, model=minilm)
    assert result.text == '"AP" in news-wire datelines'
    assert result.method == offline.METHOD_ANALYSIS
    assert all(c.text.startswith('"AP"') for c in result.candidates)  # never a bag of tokens


# --- feature 73: "the" -------------------------------------------------------------------------------


def test_feature_73_reads_as_the_after_a_preposition(minilm: Any) -> None:
    a = seen_analysis(73)
    assert (a.dominant, a.share) == ("the", 1.0)
    assert a.contexts[0][0] == "after a preposition"  # of / with / for / to the ...
    result = offline.explain_offline(split(73), backend=None, model=minilm)
    assert result.text.startswith('"the" ')


# --- numbers: a token-class analysis names them "numbers" --------------------------------------------


@pytest.mark.parametrize(
    ("token", "prev", "expected"),
    [
        (" 1960", " in", "years"),
        (" 12", " paid", "digits"),
        ("1,000", " about", "digits"),
        (" 9th", " the", "digits"),
        (" seven", " the", "number words"),
        (" seventh", " the", "ordinals"),
        (" May", " on", "months"),
        (" the", " of", "determiners"),
        (",", "word", "punctuation"),
        (" Kowalski", " Mrs.", "names"),
        (" Yesterday", ".", None),  # a capitalised first word of a sentence is not a name
        (" NATO", " the", "acronyms"),
        (" x_train", " =", "code"),
        (" house", " the", None),
    ],
)
def test_token_classes(token: str, prev: str, expected: str | None) -> None:
    assert phrasing.token_class(token, prev) == expected


@pytest.mark.parametrize("index", NUMBER_FEATURES)
def test_number_features_of_the_demo_sae_are_described_as_numbers(index: int, minilm: Any) -> None:
    a = seen_analysis(index)
    assert a.dominant is None
    assert (a.class_label or "").startswith("numbers")
    result = offline.explain_offline(split(index), backend=None, use_llm="never", model=minilm)
    assert result.text.startswith("numbers"), result.text


def test_an_llm_label_that_drops_the_class_word_is_not_kept(minilm: Any) -> None:
    class Chat:
        def complete(self, messages: Any, **kwargs: Any) -> str:
            return "sports scores and records"

    result = offline.explain_offline(split(113), backend=Chat(), use_llm="always", model=minilm)
    llm = next(c for c in result.candidates if c.method == offline.METHOD_LLM)
    assert "does not name the token class" in llm.rejected
    assert result.text.startswith("numbers")


def test_dominant_words_come_with_a_context_phrase_not_other_tokens() -> None:
    a = seen_analysis(20)  # "the" after "of"
    candidates = phrasing.analysis_candidates(a, context=None)
    assert candidates[0].startswith('"the" after')
    assert not any('", "' in c for c in candidates)


def test_shares_are_robust_to_one_outlier_activation() -> None:
    quiet = [Example((" a", " cat", "'s", " toy"), (0, 0, 5.0, 0)) for _ in range(9)]
    loud = Example((" paid", " 1", "000", " dollars"), (0, 0, 400.0, 0))
    a = phrasing.analyse([*quiet, loud])
    assert a.dominant == "'s"


# --- bad input ---------------------------------------------------------------------------------------


def test_no_examples_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no examples"):
        phrasing.analyse([])
    empty = offline.split_examples([], [])
    with pytest.raises(ValueError, match="no activating examples"):
        offline.explain_offline(empty, backend=None)
    zeros = offline.split_examples([Example((" a", " b"), (0.0, 0.0))], [])
    with pytest.raises(ValueError, match="no activating examples"):
        offline.explain_offline(zeros, backend=None)


@pytest.mark.django_db
def test_a_feature_without_examples_stores_nothing(catalog: dict[str, Any]) -> None:
    feature = factories.make_feature(catalog["source"], 4000)
    factories.make_activation(feature, [" a", " b", " c"], [0.0, 0.0, 0.0])  # never fires
    with pytest.raises(ValueError, match="no activating examples"):
        services.generate_explanation(feature=feature, explainer_type=OFFLINE, model=LOCAL_MODEL)
    assert not Explanation.objects.exists()
    assert not ExplanationScore.objects.exists()


# --- explanation search ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_search_for_numbers_returns_the_number_features_first(catalog: dict[str, Any]) -> None:
    """The real path: demo examples stored as activations, explained offline, embedded, searched."""
    settings = ExplainerSettings.for_model(OFFLINE, LOCAL_MODEL, extra={"use_llm": "never"})
    features = {}
    for index in _demo():
        feature = factories.make_feature(catalog["source"], int(index))
        for group in ("top", "quantile"):
            for ex in examples(int(index), group):
                factories.make_activation(feature, list(ex.tokens), list(ex.values),
                                          bin_min=None if group == "top" else 1.0)
        features[int(index)] = services.generate_explanation(
            feature=feature, explainer_type=OFFLINE, model=LOCAL_MODEL, settings=settings, score=False
        )
    assert features[7].description == '"AP" in news-wire datelines'
    assert features[73].description.startswith('"the"')
    hits = search_explanations("numbers", limit=3, exact=True).hits
    assert {h.index for h in hits} == set(NUMBER_FEATURES), [h.description for h in hits]
