"""The feature page of an attention SAE draws each top example's direct feature attribution (DFA) under
it: blue/red by sign, the target token boxed, values on keyboard focus, and the context-window presets
trim it like its example row."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKENS = ["When", " Mary", " and", " John", " went", " to", " the", " store", ",", " John", " gave", " a",
          " drink", " to"]


@pytest.fixture
def attention_feature() -> Any:
    model = factories.make_model("gpt2-small")
    source = factories.make_source(model, layer=5, set_name="att-kk", hook_name="blocks.5.attn.hook_z")
    source.source_set.show_dfa = True
    source.source_set.save()
    feature = factories.make_feature(source, 42)
    target = len(TOKENS) - 1
    for shift in range(3):
        values = [0.0] * len(TOKENS)
        values[target] = 4.0 - shift
        dfa = [0.0] * len(TOKENS)
        dfa[1], dfa[3], dfa[9] = 2.5 - shift, -0.4, 0.9  # " Mary" drives it, the repeated " John" opposes
        factories.make_activation(feature, TOKENS, values, bin_min=-1, bin_max=4.0, bin_contains=-1,
                                  qualifying_token_index=target, dfa_values=dfa, dfa_target_index=target,
                                  dfa_max_value=max(dfa))
    return feature


def test_dfa_rows_under_the_top_examples(live_server: Any, page: Any, attention_feature: Any) -> None:
    page.goto(f"{live_server.url}/gpt2-small/5-att-kk/42")
    rows = page.locator(".activation.dfa-row")
    assert rows.count() == 3
    first = rows.first
    assert first.locator(".dfa-label").inner_text() == "DFA"
    target = first.locator(".tok.dfa.target")
    assert target.inner_text() == " to"  # the boxed destination token
    mary = first.locator(".tok.dfa").nth(1)
    assert mary.get_attribute("title") == "DFA 2.500"
    assert "neg" in first.locator(".tok.dfa").nth(3).get_attribute("class")
    mary.focus()
    assert page.evaluate("document.activeElement.dataset.v") == "2.500"
    screenshot(page, "feature-dfa")
