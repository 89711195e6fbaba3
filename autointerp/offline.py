"""The offline explainer: what the data says first, the local LLM second, the best candidate kept.

A 135M model cannot be trusted to describe a feature on its own (it continues the examples instead of
describing them), so the explanation is built from a deterministic analysis of the feature's examples:

- (autointerp/phrasing.py) the word each example peaks on, its share of the activation mass, the
  dominant one; the token class the peaks share (numbers, punctuation, months, names, function words,
  code...); context phrases that hold for most peaks (in news-wire datelines, in parentheses, after a
  preposition, at the start of a line, after "of"...);
- a context label chosen by the local sentence embedder (all-MiniLM-L6-v2) among a fixed list of text
  kinds ("news-wire datelines", "dialogue", ...) by how much closer it is to the feature's activating
  windows than to its non-activating ones.

These give a handful of short candidates: a dominant word named first and alone, then its context
(`"AP" in news-wire datelines`, `"the" after a preposition`); else a class named by its class word
(`numbers ("1960", "12", "3")`), and only as a last resort a list of tokens. Where the analysis finds no
dominant token, the local SmolLM2 writes one more candidate, constrained: few-shot, at most a few words,
parsed, and rejected when it echoes the examples.

Candidates are scored by the embedding scorer on the examples the explainer saw (activating windows vs
non-activating windows of the same rows); a candidate that does not name the dominant word (or, without
one, the class word such as "numbers") is not eligible, and a shorter candidate wins near-ties. The kept
explanation is then scored on HELD-OUT examples (`split_examples`), which is the score shown with it.

Examples are split by rank: the explainer sees the even ranks of the top group and of the quantile
bins, scorers use the odd ranks. Non-activating text is corpus text where the feature is exactly zero
(windows of the feature's own example sequences, whose per-token values are known), not other
features' top examples.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autointerp.examples import Example
from autointerp.phrasing import (
    Analysis,
    analyse,
    analysis_candidates,
    peak_index,
    peak_of,
    required_words,
    show,
)

OFFLINE_EXPLAINER = "np_offline"
METHOD_ANALYSIS = "token-analysis"
METHOD_LLM = "llm"
WINDOW = 6  # tokens either side of the peak in a scored window
SCORER_VERSION = "heldout-windows-v1"


# ---------------------------------------------------------------- evidence


@dataclass(frozen=True)
class SplitExamples:
    """Examples the explainer may see, and the held-out ones scorers use."""

    seen: tuple[Example, ...]
    held_out: tuple[Example, ...]
    top_logits: tuple[str, ...] = ()
    bottom_logits: tuple[str, ...] = ()
    n_seen_top: int | None = None  # the first n of `seen` are top-group examples (None: all of them)

    @property
    def seen_top(self) -> tuple[Example, ...]:
        return self.seen if self.n_seen_top is None else self.seen[: self.n_seen_top]


def split_examples(top: Sequence[Example], quantile: Sequence[Example] = (), **logits: Any) -> SplitExamples:
    """Even ranks (0, 2, 4...) of the top group and of the quantile examples are seen, odd ranks held out."""
    return SplitExamples(
        seen=tuple(top[0::2]) + tuple(quantile[0::2]),
        held_out=tuple(top[1::2]) + tuple(quantile[1::2]),
        n_seen_top=len(top[0::2]),
        **logits,
    )


def feature_examples(feature: Any) -> tuple[list[Example], list[Example]]:
    """(top group strongest first, quantile examples highest bin first), deduplicated, positive only."""
    from features.models import Activation  # noqa: PLC0415

    rows = (
        Activation.objects.filter(feature=feature)
        .order_by("-max_value", "id")
        .only("tokens", "values", "bin_min", "max_value")
    )
    seen: set[str] = set()
    top: list[Example] = []
    quantile: list[Example] = []
    for row in rows:
        example = Example(tuple(row.tokens), tuple(float(v) for v in row.values))
        if example.max_value <= 0 or example.text in seen:
            continue
        seen.add(example.text)
        (top if row.bin_min is None or row.bin_min < 0 else quantile).append(example)
    return top, quantile


def split_for_feature(feature: Any) -> SplitExamples:
    top, quantile = feature_examples(feature)
    return split_examples(
        top,
        quantile,
        top_logits=tuple(feature.pos_str or ())[:10],
        bottom_logits=tuple(feature.neg_str or ())[:10],
    )


# ---------------------------------------------------------------- windows


_peak = peak_index


def window_text(example: Example, center: int, width: int = WINDOW) -> str:
    lo, hi = max(0, center - width), min(len(example.tokens), center + width + 1)
    return "".join(example.tokens[lo:hi]).strip()


def activating_windows(examples: Sequence[Example], width: int = WINDOW) -> list[str]:
    return [text for ex in examples if (text := window_text(ex, _peak(ex), width))]


def non_activating_windows(
    examples: Sequence[Example], width: int = WINDOW, per_example: int = 2
) -> list[str]:
    """Windows of corpus text where the feature is exactly zero on every token (and one token either
    side), taken from the examples' own sequences: labels known, not guessed."""
    size = 2 * width + 1
    out: list[str] = []
    seen: set[str] = set()
    for ex in examples:
        values = ex.values
        taken = 0
        start = 0
        while start + size <= len(values) and taken < per_example:
            lo, hi = max(0, start - 1), min(len(values), start + size + 1)
            if all(v <= 0 for v in values[lo:hi]):
                text = "".join(ex.tokens[start : start + size]).strip()
                if len(text) >= 8 and text not in seen:
                    seen.add(text)
                    out.append(text)
                    taken += 1
                start += size
            else:
                start += 1
    return out


# ---------------------------------------------------------------- embedding scorer


_lock = threading.Lock()


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties count half."""
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("AUROC needs positives and negatives")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


class WindowScorer:
    """Embedding scorer over fixed activating / non-activating windows: each candidate costs one encode."""

    def __init__(self, pos: list[str], neg: list[str], *, model: Any = None) -> None:
        from autointerp.embedders import load_minilm  # noqa: PLC0415

        if not pos or not neg:
            raise ValueError(
                f"embedding scoring needs activating and non-activating text ({len(pos)} and {len(neg)})"
            )
        self.model = model or load_minilm()
        self.pos_texts, self.neg_texts = pos, neg
        vectors = self._encode(pos + neg)
        self.pos, self.neg = vectors[: len(pos)], vectors[len(pos) :]

    def _encode(self, texts: list[str]) -> np.ndarray:
        with _lock:
            return np.asarray(
                self.model.encode(
                    texts,
                    batch_size=64,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                ),
                dtype=np.float32,
            )

    def scores(self, explanations: list[str]) -> list[float]:
        vectors = self._encode(explanations)
        return [auroc(self.pos @ v, self.neg @ v) for v in vectors]

    def details(self, explanation: str) -> dict[str, Any]:
        v = self._encode([explanation])[0]
        ps, ns = self.pos @ v, self.neg @ v
        rows = [
            {"text": t, "activating": True, "similarity": float(s)}
            for t, s in zip(self.pos_texts, ps, strict=True)
        ]
        rows += [
            {"text": t, "activating": False, "similarity": float(s)}
            for t, s in zip(self.neg_texts, ns, strict=True)
        ]
        rows.sort(key=lambda r: -r["similarity"])
        return {
            "value": auroc(ps, ns),
            "breakdown": rows,
            "metric": "roc_auc",
            "embedder": "all-MiniLM-L6-v2",
            "examples": "held-out",
            "scorer_version": SCORER_VERSION,
            "n_activating": len(ps),
            "n_non_activating": len(ns),
        }


def held_out_scorer(split: SplitExamples, *, model: Any = None) -> WindowScorer:
    """Held-out activating windows vs zero windows of every example sequence (seen ones too: only the
    activating windows carry what the explainer saw)."""
    pos = activating_windows(split.held_out)
    neg = non_activating_windows(split.held_out + split.seen)
    return WindowScorer(pos, neg, model=model)


def seen_scorer(split: SplitExamples, *, model: Any = None) -> WindowScorer:
    return WindowScorer(activating_windows(split.seen), non_activating_windows(split.seen), model=model)


# ---------------------------------------------------------------- context labels

# Kinds of text a context label is chosen from (the Brown corpus's genres and common patterns).
CONTEXT_LABELS = {  # label shown -> text the embedder compares with the windows
    "news-wire datelines": "Dallas, Tex., May 1 -- (AP) -- a news-wire dateline: city, date, agency",
    "news reports": "news report: officials said on Tuesday",
    "sports reports": "sports report: the team won the game, scored runs",
    "politics and government": "politics and government: the senate, the president, the committee",
    "legal documents": "legal text: the court, the statute, pursuant to section",
    "dialogue and quotations": 'dialogue: "I don\'t know," he said',
    "fiction narrative": "fiction narrative: she looked at him and walked away",
    "religious text": "religious text: God, the church, faith and prayer",
    "scientific and technical writing": "technical writing: the experiment measured the sample",
    "dates and times": "dates and times: on Monday, May 1, 1961, at noon",
    "money and prices": "money and prices: $5 million, cost, dollars",
    "measurements and quantities": "measurements and quantities: 3 inches, 10 pounds, per cent",
    "people's names": "people's names: Mr. John Smith and Mrs. Jones",
    "place names": "place names: cities, states and countries",
    "lists": "a list of items separated by commas",
    "book, music and art reviews": "review of a book, a concert, a painting",
    "cooking and hobbies": "cooking and hobbies: recipe, garden, build",
    "military and war": "military and war: troops, soldiers, the army",
    "education and schools": "education: school, students, teachers",
    "business and industry": "business and industry: company, sales, production",
    "medicine and health": "medicine and health: patients, doctors, disease",
    "family and relationships": "family: mother, father, husband, wife, children",
    "emotions and feelings": "emotions and feelings: love, fear, anger, joy",
    "nature and weather": "nature and weather: trees, rain, the sea",
    "titles and honorifics": "titles: Mr., Mrs., Dr., President",
}


CONTEXT_PENALTY = 0.03  # a context label is a guess of the embedder: it must win clearly on seen examples


_label_vectors: np.ndarray | None = None


def choose_context(
    scorer: WindowScorer, *, pos: np.ndarray | None = None, min_margin: float = 0.05
) -> str | None:
    """The context label whose similarity separates activating (`pos`, default all the scorer's) from
    non-activating windows best, when it does so by at least `min_margin` (mean cosine)."""
    global _label_vectors
    if _label_vectors is None:
        _label_vectors = scorer._encode(list(CONTEXT_LABELS.values()))
    pos = scorer.pos if pos is None or not len(pos) else pos
    margins = (pos @ _label_vectors.T).mean(0) - (scorer.neg @ _label_vectors.T).mean(0)
    best = int(np.argmax(margins))
    return list(CONTEXT_LABELS)[best] if margins[best] >= min_margin else None


# ---------------------------------------------------------------- constrained LLM candidate

LLM_SYSTEM = (
    "You label features of a language model. You see text where a feature fires; the firing tokens are "
    "marked <<like this>>. Reply with ONE short label of 2 to 5 words naming what the marked tokens have "
    "in common. Never copy the text. No sentence, no explanation."
)
LLM_FEW_SHOT = [
    {
        "role": "user",
        "content": "Marked tokens: Paris, London, Berlin\n1. We flew to<< Paris>> in May\n"
        "2. The rain in<< London>> stopped\n3. She moved to<< Berlin>> last year\nLabel:",
    },
    {"role": "assistant", "content": "European capital cities"},
    {
        "role": "user",
        "content": "Marked tokens: 1960, 12, 3\n1. In<< 1960>> the town grew\n"
        "2. He paid<< 12>> dollars\n3. about<< 3>> miles away\nLabel:",
    },
    {"role": "assistant", "content": "numbers and years"},
    {
        "role": "user",
        "content": "Marked tokens: happy, glad, joy\n1. she was<< happy>> to see\n"
        "2. I am<< glad>> you came\n3. tears of<< joy>> ran\nLabel:",
    },
    {"role": "assistant", "content": "words for happiness"},
]


def _highlight(ex: Example, width: int = 8) -> str:
    i = peak_index(ex)
    lo, hi = max(0, i - width), min(len(ex.tokens), i + 3)
    top = ex.max_value
    parts = []
    for tok, v in zip(ex.tokens[lo:hi], ex.values[lo:hi], strict=False):
        tok = tok.replace("\n", " ")
        parts.append(f"<<{tok}>>" if top > 0 and v >= 0.5 * top else tok)
    return "".join(parts).replace(">><<", "").strip()


def llm_messages(examples: Sequence[Example], a: Analysis, k: int = 5) -> list[dict[str, str]]:
    lines = [f"Marked tokens: {', '.join(t for t, _ in a.top_tokens[:5])}"]
    lines += [f"{i + 1}. {_highlight(ex)}" for i, ex in enumerate(examples[:k])]
    lines.append("Label:")
    return [
        {"role": "system", "content": LLM_SYSTEM},
        *LLM_FEW_SHOT,
        {"role": "user", "content": "\n".join(lines)},
    ]


class RejectedOutput(ValueError):
    pass


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def parse_llm_label(raw: str, examples: Sequence[Example], *, max_words: int = 8) -> str:
    """The first line, cleaned; RejectedOutput when empty, too long, or echoing the examples' text."""
    line = next((ln.strip() for ln in raw.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(label|explanation)\s*:\s*", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'`*<>").rstrip(".").strip().strip("\"'`*<>").strip()
    words = _words(line)
    if len(words) < 1 or len(line) < 3:
        raise RejectedOutput(f"empty label: {raw[:100]!r}")
    if len(words) > max_words:
        raise RejectedOutput(f"too long ({len(words)} words): {line[:100]!r}")
    if "<<" in raw or ">>" in raw:
        raise RejectedOutput(f"copies the marked text: {line[:100]!r}")
    corpus = " ".join(" ".join(_words(ex.text)) for ex in examples)
    for n in (3,) if len(words) >= 3 else ():
        for i in range(len(words) - n + 1):
            if " " + " ".join(words[i : i + n]) + " " in f" {corpus} ":
                raise RejectedOutput(f"echoes the examples ({' '.join(words[i : i + n])!r}): {line[:100]!r}")
    if len(words) == 2 and f" {' '.join(words)} " in f" {corpus} ":
        raise RejectedOutput(f"echoes the examples: {line[:100]!r}")
    return line[:120]


# ---------------------------------------------------------------- the explainer


@dataclass
class Candidate:
    text: str
    method: str
    seen_score: float | None = None
    rejected: str = ""


@dataclass
class OfflineResult:
    text: str
    method: str
    candidates: list[Candidate]
    analysis: dict[str, Any]
    context: str | None
    llm_error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "candidates": [c.__dict__ for c in self.candidates],
            "analysis": self.analysis,
            "context": self.context,
            "llm_error": self.llm_error,
        }


def names_token(text: str, token: str) -> bool:
    """Whether `text` names `token` as a word (not as a piece of another word)."""
    t = token.strip().lower()
    if not t:
        return "line" in text.lower()
    if re.fullmatch(r"\w+", t):
        return re.search(rf"(?<![a-z0-9]){re.escape(t)}(?![a-z0-9])", text.lower()) is not None
    return t in text.lower()


def explain_offline(
    split: SplitExamples,
    *,
    backend: Any = None,
    use_llm: str = "auto",
    model: Any = None,
    length_penalty: float = 0.01,
) -> OfflineResult:
    """Candidates from the analysis (+ the constrained LLM), best by the seen-examples embedding score.

    `use_llm`: "auto" asks the LLM only when the analysis finds no dominant token, "always", or "never".
    Raises ValueError when there are no examples."""
    seen = [ex for ex in split.seen if ex.max_value > 0]
    if not seen:
        raise ValueError("the feature has no activating examples to explain")
    # what the feature does at its strongest: the top group (quantile examples when it has too few)
    top = [ex for ex in split.seen_top if ex.max_value > 0]
    focus = top if len(top) >= 3 else seen
    a = analyse(focus, split.top_logits)
    if a.dominant is not None:  # the context of the dominant word's own examples
        key = a.dominant.strip().lower()
        focus = [ex for ex in focus if peak_of(ex).key == key] or focus
    scorer = None
    context = None
    try:
        scorer = seen_scorer(split, model=model)
        # seen windows are in `seen` order, the top group first
        context = choose_context(scorer, pos=scorer.pos[: len(activating_windows(focus))])
    except ValueError:
        scorer = None  # too few non-activating windows: keep the analysis's own order
    candidates = [Candidate(text, METHOD_ANALYSIS) for text in analysis_candidates(a, context)]
    llm_error = ""
    if backend is not None and (use_llm == "always" or (use_llm == "auto" and a.dominant is None)):
        try:
            raw = backend.complete(llm_messages(seen, a), max_tokens=12, temperature=0.0)
            candidates.append(Candidate(parse_llm_label(raw, seen), METHOD_LLM))
        except RejectedOutput as exc:
            candidates.append(Candidate("", METHOD_LLM, rejected=str(exc)))
        except Exception as exc:  # the LLM is a second opinion: its failure is recorded, not fatal
            llm_error = f"{type(exc).__name__}: {exc}"[:300]
    eligible = [c for c in candidates if c.text and not c.rejected]
    if (required := required_words(a)) is not None:
        for c in eligible:
            if not names_token(c.text, required):
                what = "dominant token" if a.dominant is not None else "token class"
                c.rejected = f"does not name the {what} {show(required)}"
        eligible = [c for c in eligible if not c.rejected]
    if scorer is not None and eligible:
        for c, s in zip(eligible, scorer.scores([c.text for c in eligible]), strict=True):
            c.seen_score = s
        best = max(
            eligible,
            key=lambda c: (
                (c.seen_score or 0)
                - length_penalty * len(c.text.split())
                - (CONTEXT_PENALTY if context and context in c.text else 0.0)
            ),
        )
    else:
        best = eligible[0]
    return OfflineResult(
        text=best.text,
        method=best.method,
        candidates=candidates,
        context=context,
        llm_error=llm_error,
        analysis=a.as_json(),
    )
