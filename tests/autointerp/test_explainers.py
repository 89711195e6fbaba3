"""Explainers through the OpenAI-compatible client (fake server over real HTTP) and delphi."""

from __future__ import annotations

from typing import Any

import pytest

from autointerp import services
from autointerp.explainers import DELPHI_DEFAULT, NP_MAX_ACT_LOGITS
from autointerp.llm import OpenAIChat, ProviderError, UnparseableOutput, resolve_provider
from autointerp.models import ProviderKey
from features.models import Explanation
from tests.autointerp.conftest import chat_reply, error_reply

pytestmark = pytest.mark.django_db


def test_np_max_act_logits_explanation_is_stored_with_type_model_and_settings(
    fake_llm: Any, cat_feature: Any
) -> None:
    explanation = services.generate_explanation(
        feature=cat_feature, explainer_type=NP_MAX_ACT_LOGITS, model="fake-gpt", embed=False
    )
    assert explanation.description == "mentions of cats"
    assert (explanation.type_id, explanation.explanation_model_id) == (NP_MAX_ACT_LOGITS, "fake-gpt")
    assert explanation.explainer_settings["max_examples"] == 10
    prompt = fake_llm.chat_requests[0]["messages"][-1]["content"]
    assert "<< cat>>" in prompt
    assert "purr" in prompt


def test_delphi_default_explainer_parses_its_explanation(fake_llm: Any, cat_feature: Any) -> None:
    explanation = services.generate_explanation(
        feature=cat_feature, explainer_type=DELPHI_DEFAULT, model="fake-gpt", embed=False
    )
    assert explanation.description == "mentions of cats"
    assert "[EXPLANATION]" in fake_llm.chat_requests[0]["messages"][0]["content"]


def test_same_explainer_and_model_is_not_run_twice(fake_llm: Any, cat_feature: Any) -> None:
    for _ in range(2):
        services.generate_explanation(
            feature=cat_feature, explainer_type=NP_MAX_ACT_LOGITS, model="fake-gpt", embed=False
        )
    assert len(fake_llm.chat_requests) == 1
    assert Explanation.objects.filter(feature=cat_feature).count() == 1


def test_embedding_is_stored_with_its_embedder(fake_llm: Any, cat_feature: Any) -> None:
    explanation = services.generate_explanation(
        feature=cat_feature, explainer_type=NP_MAX_ACT_LOGITS, model="fake-gpt"
    )
    assert explanation.embedder == "all-MiniLM-L6-v2"
    assert len(explanation.embedding) == 384


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (error_reply(402, "Insufficient credits"), "key exhausted"),
        (error_reply(401, "Invalid API key"), "key rejected"),
        (error_reply(429, "You exceeded your current quota"), "quota exhausted"),
    ],
)
def test_final_provider_errors_raise_with_a_reason(
    fake_llm: Any, cat_feature: Any, reply: Any, match: str
) -> None:
    fake_llm.reply_sequence(reply)
    with pytest.raises(ProviderError, match=match) as info:
        services.generate_explanation(
            feature=cat_feature, explainer_type=NP_MAX_ACT_LOGITS, model="fake-gpt", embed=False
        )
    assert not info.value.transient
    assert "sk-test" not in info.value.reason


def test_429_with_retry_after_and_5xx_are_transient(fake_llm: Any) -> None:
    fake_llm.reply_sequence(error_reply(429, "slow down", {"Retry-After": "2"}), error_reply(503, "busy"))
    chat = OpenAIChat(resolve_provider())
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            chat.complete([{"role": "user", "content": "hi"}], max_tokens=5, temperature=0)
        assert info.value.transient
    assert chat.complete([{"role": "user", "content": "hi"}], max_tokens=5, temperature=0)


def test_unparseable_output_is_an_error_not_an_explanation(fake_llm: Any, cat_feature: Any) -> None:
    fake_llm.reply_sequence(chat_reply("  \n "))
    with pytest.raises(UnparseableOutput):
        services.generate_explanation(
            feature=cat_feature, explainer_type=NP_MAX_ACT_LOGITS, model="fake-gpt", embed=False
        )
    assert not Explanation.objects.filter(feature=cat_feature).exists()


def test_user_key_beats_global_key_and_env(fake_llm: Any, alice: Any, bob: Any) -> None:
    ProviderKey.objects.create(
        user=None, provider="CUSTOM", base_url=fake_llm.base_url, value="global-key-0000"
    )
    ProviderKey.objects.create(
        user=alice, provider="CUSTOM", base_url=fake_llm.base_url, value="alice-key-1111"
    )
    assert resolve_provider(user=alice).api_key == "alice-key-1111"
    assert resolve_provider(user=bob).source == "global"
    OpenAIChat(resolve_provider(user=alice)).complete(
        [{"role": "user", "content": "x"}], max_tokens=3, temperature=0
    )
    assert fake_llm.headers[-1]["authorization"] == "Bearer alice-key-1111"
    assert "alice-key" not in repr(resolve_provider(user=alice))


def test_eleuther_acts_top20_is_delphis_default_explainer(fake_llm: Any, cat_feature: Any) -> None:
    """Issue 16: eleuther_acts_top20 sends delphi's DefaultExplainer prompt (its system prompt, and the
    highlighted examples in delphi's format) and parses the answer with delphi."""
    from autointerp.explainers import import_delphi

    import_delphi()
    from delphi.explainers.default import prompts

    services.generate_explanation(feature=cat_feature, explainer_type=DELPHI_DEFAULT, model="fake-gpt",
                                  embed=False)
    messages = fake_llm.chat_requests[0]["messages"]
    system_head = prompts.SYSTEM.split("{prompt}")[0]
    assert messages[0]["role"] == "system"
    assert messages[0]["content"].startswith(system_head)
    assert "<< cat>>" in messages[-1]["content"]  # delphi's highlighting of the activating tokens
    assert 'Activations: (" cat" : 10)' in messages[-1]["content"]  # and its activation listing (0-10)
