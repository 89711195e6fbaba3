"""The markup the feature page builds in Python (tokens, example rows, histograms, score details): escaped,
and the same for a token whether or not it was seen before (the escape cache)."""

from __future__ import annotations

from types import SimpleNamespace

from features.views import present


def test_tokens_are_escaped_coloured_and_cached() -> None:
    first = present.tokens_html(["<b>", " ok", "a\nb"], [0.0, 2.0, 4.0], scale=4.0)
    assert first == ('<span class="tok">&lt;b&gt;</span>'
                     '<span class="tok hot" tabindex="0" data-v="2.000" title="2.000" style="--a:0.500">'
                     ' ok</span>'
                     '<span class="tok hot max" tabindex="0" data-v="4.000" title="4.000" style="--a:1.000">'
                     'a↵b</span>'
                     '<br class="lb">')
    assert present.tokens_html(["<b>", " ok", "a\nb"], [0.0, 2.0, 4.0], scale=4.0) == first


def test_negative_and_over_scale_values() -> None:
    html = present.tokens_html(["x", "y"], [-1.0, 9.0], scale=3.0)
    assert '<span class="tok hot" tabindex="0" data-v="-1.000" title="-1.000">x</span>' in html  # no colour
    assert 'style="--a:1.000">y' in html  # clipped at 1


def test_activation_rows() -> None:
    act = SimpleNamespace(max_value=2.5, max_value_token_index=1, tokens=["a", "b"], values=[0.0, 2.5])
    html = present.activations_html([act], None)
    assert html.startswith('<div class="activation" data-max="2.5" data-max-index="1">'
                           '<span class="act-max num">2.50</span><span class="toks">')
    assert html.endswith("</span></div>")


def test_histogram_html_and_empty() -> None:
    html = present.histogram_html([-1.0, 0.5], [3, 6], "Logit <effect>", "logits")
    assert html.startswith('<figure class="hist hist-logits"><svg viewBox="0 0 320 110"')
    assert html.count("<rect") == 2
    assert 'class="neg"><title>-1: 3</title>' in html
    assert "Logit &lt;effect&gt;" in html
    assert present.histogram_html([], [], "Activation density", "density") == (
        '<p class="empty">No activation density data.</p>')


def test_score_details_facts_table_and_escaping() -> None:
    html = present.score_details_html({"metric": "auc", "value": 0.91234, "breakdown": [
        {"text": "<i>x</i>", "activating": True, "score": 0.5}, {"text": "y", "extra": None}]})
    assert '<dl class="facts"><dt>metric</dt><dd>auc</dd><dt>value</dt><dd>0.912</dd></dl>' in html
    assert "<th>text</th><th>activating</th><th>score</th><th>extra</th>" in html
    assert "<td>&lt;i&gt;x&lt;/i&gt;</td><td>True</td><td>0.500</td><td></td>" in html
    empty = '<p class="empty">No per-example details were stored for this score.</p>'
    assert present.score_details_html({}) == empty
    assert present.score_details_html(None) == present.score_details_html({})
