"""Self-service autointerp: LLM keys (encrypted at rest, shown masked), deleting explanations (own or
admin), the explanation/score type pages, Neuronpedia's other explainer types and `recall_alt` over an
OpenAI-compatible endpoint (the FAKE server of conftest.py: protocol tests, not quality results)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from autointerp import services
from autointerp.explainers import NP_MAX_ACT, OAI_TOKEN_ACT_PAIR
from autointerp.llm import resolve_provider
from autointerp.models import ProviderKey
from autointerp.scorers import RECALL_ALT
from features.models import Explanation, ScoreStatus
from neuronpedia.accounts.services import create_api_key
from tests.autointerp.conftest import chat_reply

pytestmark = pytest.mark.django_db

SECRET = "sk-live-abcdefghijklmnop-WXYZ"


@pytest.fixture
def cat_explanation(fake_llm: Any, cat_feature: Any) -> Any:
    from autointerp.explainers import NP_MAX_ACT_LOGITS

    return services.generate_explanation(feature=cat_feature, explainer_type=NP_MAX_ACT_LOGITS,
                                         model="fake-gpt")


def test_provider_key_is_encrypted_at_rest_and_shown_masked(client: Any, alice: Any) -> None:
    client.force_login(alice)
    page = client.post("/accounts/llm-keys/", {"provider": "OPENAI", "value": SECRET})
    body = page.content.decode()
    assert page.status_code == 200
    assert "…WXYZ" in body
    assert SECRET not in body
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM autointerp_providerkey")
        (stored,) = cursor.fetchone()
    assert SECRET not in stored
    assert stored.startswith("fernet:")
    assert resolve_provider(user=alice).api_key == SECRET  # decrypted only where it is used
    assert SECRET not in client.get("/accounts/llm-keys/").content.decode()


def test_bad_provider_key_input_is_refused(client: Any, alice: Any) -> None:
    client.force_login(alice)
    assert client.post("/accounts/llm-keys/", {"provider": "NOPE", "value": SECRET}).status_code == 400
    assert client.post("/accounts/llm-keys/", {"provider": "OPENAI", "value": "short"}).status_code == 400
    custom = client.post("/accounts/llm-keys/", {"provider": "CUSTOM", "value": SECRET, "base_url": "ftp://x"})
    assert custom.status_code == 400
    assert not ProviderKey.objects.exists()
    assert client.get("/accounts/llm-keys/").status_code == 200


def test_a_user_deletes_only_their_own_explanations_and_admins_any(
    client: Any, cat_feature: Any, alice: Any, bob: Any, admin_user: Any
) -> None:
    from features.services import create_human_explanation

    mine = create_human_explanation(user=alice, feature=cat_feature, text="mentions of cats")
    client.force_login(bob)
    assert client.post(f"/explanations/{mine.pk}/delete/").status_code == 403
    client.force_login(alice)
    assert client.post(f"/explanations/{mine.pk}/delete/").status_code == 302
    assert not Explanation.objects.filter(pk=mine.pk).exists()
    other = create_human_explanation(user=bob, feature=cat_feature, text="cats")
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=create_api_key(user=alice)[1])
    assert api.post(f"/api/explanation/{other.pk}/delete").status_code == 403
    api.credentials(HTTP_X_API_KEY=create_api_key(user=admin_user)[1])
    assert api.post(f"/api/explanation/{other.pk}/delete").json() == {"deleted": str(other.pk)}
    assert not Explanation.objects.exists()


def test_type_pages_list_methods_with_counts_and_prompts(client: Any, cat_explanation: Any) -> None:
    services.score_explanation(explanation=cat_explanation, score_type="eleuther_embedding")
    listing = client.get("/explanation-types/").content.decode()
    names = ("np_offline", "np_max-act-logits", "np_max-act", "eleuther_acts_top20", "oai_token-act-pair",
             "oai_attention-head", "recall_alt", "eleuther_recall", "eleuther_fuzz", "eleuther_embedding")
    for name in names:
        assert name in listing
    page = client.get(f"/explanation-type/{cat_explanation.type_id}/").content.decode()
    assert "You are explaining the behavior of a feature" in page
    score_page = client.get("/score-type/eleuther_embedding/").content.decode()
    assert "held-out" in score_page.lower()
    assert client.get("/explanation-type/nope/").status_code == 404


@pytest.mark.parametrize("explainer", [NP_MAX_ACT, OAI_TOKEN_ACT_PAIR])
def test_neuronpedia_explainers_over_an_openai_compatible_endpoint(
    fake_llm: Any, cat_feature: Any, explainer: str
) -> None:
    fake_llm.script = lambda body: chat_reply("mentions of cats")
    explanation = services.generate_explanation(feature=cat_feature, explainer_type=explainer,
                                                model="fake-gpt")
    assert explanation.description == "mentions of cats"
    assert explanation.method == "llm"
    sent = fake_llm.chat_requests[-1]["messages"]
    if explainer == OAI_TOKEN_ACT_PAIR:
        assert "\t10" in sent[-1]["content"]  # token<tab>activation pairs
    else:
        assert "Top predicted next tokens" not in sent[-1]["content"]  # np_max-act: no logits


def test_recall_alt_over_an_openai_compatible_endpoint(fake_llm: Any, cat_explanation: Any) -> None:
    def yes_for_cats(body: dict[str, Any]) -> Any:
        text = body["messages"][-1]["content"].split("Text:")[-1]
        return chat_reply("yes" if "cat" in text.lower() else "no")

    fake_llm.script = yes_for_cats
    row = services.score_explanation(explanation=cat_explanation, score_type=RECALL_ALT)
    assert row.status == ScoreStatus.DONE, row.error
    assert row.value == pytest.approx(1.0)
    fake_llm.script = lambda body: chat_reply("maybe")
    cat_explanation.description = "cats!"
    cat_explanation.save()
    again = services.score_explanation(explanation=cat_explanation, score_type=RECALL_ALT)
    assert again.status == ScoreStatus.FAILED
    assert "yes/no" in again.error
