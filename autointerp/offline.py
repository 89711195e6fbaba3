"""The offline explainer: what the data says first, the local LLM second, the best candidate kept.

A 135M model cannot be trusted to describe a feature on its own (it continues the examples instead of
describing them), so the explanation is built from a deterministic analysis of the feature's examples:

- the token each example peaks on, grouped case-insensitively: the dominant one and its share;
- the tokens just before and after the peak (a shared left/right context such as "(" ... ")");
- token classes shared by the peaks (numbers, punctuation, months, names, word endings...);
- position patterns (the peak starts a sentence or a line);
- the top positive logits (what the feature makes more likely next);
- a context label chosen by the local sentence embedder (all-MiniLM-L6-v2) among a fixed list of text
  kinds ("news-wire datelines", "dialogue", ...) by how much closer it is to the feature's activating
  windows than to its non-activating ones.

These give a handful of short candidates (`"AP" in "(AP)"`, `"AP" in news-wire datelines`, `numbers
("1960", "12")`...). Where the analysis finds no dominant token, the local SmolLM2 writes one more
candidate, constrained: few-shot, at most a few words, parsed, and rejected when it echoes the examples.

Candidates are scored by the embedding scorer on the examples the explainer saw (activating windows vs
non-activating windows of the same rows); a candidate that does not name a dominant token is not
eligible, and a shorter candidate wins near-ties. The kept explanation is then scored on HELD-OUT
examples (`split_examples`), which is the score shown with it.

Examples are split by rank: the explainer sees the even ranks of the top group and of the quantile
bins, scorers use the odd ranks. Non-activating text is corpus text where the feature is exactly zero
(windows of the feature's own example sequences, whose per-token values are known), not other
features' top examples.
"""

from __future__ import annotations

import re
import string
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autointerp.explainers import Example

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


def _peak(example: Example) -> int:
    return int(np.argmax(example.values)) if example.values else 0


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


# ---------------------------------------------------------------- analysis

NUMBER_WORDS = set(
    [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "million",
        "billion",
        "dozen",
        "half",
    ]
)
ORDINALS = set(
    ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "last"]
)
MONTHS = set(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)
WEEKDAYS = set(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
PRONOUNS = set(
    [
        "i",
        "you",
        "he",
        "she",
        "it",
        "we",
        "they",
        "me",
        "him",
        "her",
        "us",
        "them",
        "his",
        "its",
        "our",
        "their",
        "my",
        "your",
        "mine",
        "hers",
        "theirs",
    ]
)
DETERMINERS = set(["the", "a", "an", "this", "that", "these", "those", "some", "any", "every", "each", "no"])
PREPOSITIONS = set(
    [
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "to",
        "into",
        "onto",
        "upon",
        "about",
        "over",
        "under",
        "after",
        "before",
        "between",
        "through",
        "during",
        "against",
        "among",
        "without",
        "within",
    ]
)
CONJUNCTIONS = set(
    [
        "and",
        "or",
        "but",
        "nor",
        "so",
        "yet",
        "because",
        "although",
        "though",
        "while",
        "if",
        "unless",
        "whereas",
    ]
)
AUXILIARIES = set(
    [
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "will",
        "would",
        "shall",
        "should",
        "can",
        "could",
        "may",
        "might",
        "must",
    ]
)


def token_class(token: str) -> str | None:
    """A coarse class of a (stripped) token, or None."""
    t = token.strip()
    low = t.lower()
    if not t:
        return "whitespace"
    if re.fullmatch(r"[\d][\d,.]*", t) or low in NUMBER_WORDS:
        return "numbers"
    if all(c in string.punctuation for c in t):
        return "punctuation"
    if low in MONTHS:
        return "month names"
    if low in WEEKDAYS:
        return "weekday names"
    if low in ORDINALS:
        return "ordinal words"
    if low in PRONOUNS:
        return "pronouns"
    if low in DETERMINERS:
        return "articles and determiners"
    if low in PREPOSITIONS:
        return "prepositions"
    if low in CONJUNCTIONS:
        return "conjunctions"
    if low in AUXILIARIES:
        return "auxiliary verbs"
    return None


def suffix_class(token: str) -> str | None:
    low = token.strip().lower()
    if len(low) >= 5 and low.isalpha():
        for suffix, label in (
            ("ing", '"-ing" words'),
            ("ed", '"-ed" words'),
            ("ly", '"-ly" adverbs'),
            ("tion", '"-tion" nouns'),
        ):
            if low.endswith(suffix):
                return label
    return None


def show(token: str) -> str:
    """A token as it appears in a description: stripped, quoted; line breaks named."""
    if token.strip() == "":
        return "line breaks" if "\n" in token else "spaces"
    return f'"{token.strip()}"'


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


@dataclass
class Analysis:
    n: int
    dominant: str | None  # the dominant peak token (display form) when its share >= DOMINANT_SHARE
    share: float
    top_tokens: list[tuple[str, float]]  # (display form, share), most common first
    prev: tuple[str, float] | None
    next: tuple[str, float] | None
    token_class: tuple[str, float] | None
    suffix: tuple[str, float] | None
    sentence_start: float
    logits: list[str]
    examples_of_class: list[str] = field(default_factory=list)


DOMINANT_SHARE = 0.5
LEAD_SHARE, LEAD_RATIO = 0.35, 1.3  # or a clear lead: >= 35% of peaks and 1.3x the runner-up
CONTEXT_PENALTY = 0.03  # a context label is a guess of the embedder: it must win clearly on seen examples


def _most_common_form(forms: Counter[str]) -> str:
    return forms.most_common(1)[0][0]


def _continues_word(token: str) -> bool:
    """A sub-word piece that glues onto the token before it (no leading space, alphanumeric)."""
    return bool(token) and token[0].isalnum()


def peak_word(ex: Example, i: int) -> tuple[str, int, int]:
    """The whole word around token i (sub-word pieces joined: "A" + "P" -> "AP"), and its span."""
    lo = i
    while (
        lo > 0
        and _continues_word(ex.tokens[lo])
        and ex.tokens[lo - 1].strip()
        and ex.tokens[lo - 1].strip()[-1].isalnum()
    ):
        lo -= 1
    hi = i + 1
    while hi < len(ex.tokens) and _continues_word(ex.tokens[hi]) and ex.tokens[hi - 1].strip():
        hi += 1
    return "".join(ex.tokens[lo:hi]), lo, hi


def analyse(examples: Sequence[Example], top_logits: Sequence[str] = ()) -> Analysis:
    """Statistics of the peak tokens of `examples` (see the module docstring)."""
    peaks: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    prevs: dict[str, Counter[str]] = {}
    nexts: dict[str, Counter[str]] = {}
    classes: Counter[str] = Counter()
    suffixes: Counter[str] = Counter()
    class_examples: dict[str, Counter[str]] = {}
    starts = 0
    n = 0
    for ex in examples:
        if not ex.tokens:
            continue
        n += 1
        i = _peak(ex)
        token, lo, hi = peak_word(ex, i) if ex.tokens[i].strip().isalnum() else (ex.tokens[i], i, i + 1)
        key = token.strip().lower() or token
        peaks[key] += 1
        forms.setdefault(key, Counter())[token.strip() or token] += 1
        prev = ex.tokens[lo - 1] if lo > 0 else ""
        nxt = ex.tokens[hi] if hi < len(ex.tokens) else ""
        if prev.strip() == "<|im_end|>" or (not prev.strip() and "\n" in prev):
            prevs.setdefault(key, Counter())["\n"] += 1
        elif prev.strip():
            prevs.setdefault(key, Counter())[prev.strip()] += 1
        if nxt.strip():
            nexts.setdefault(key, Counter())[nxt.strip()] += 1
        if cls := token_class(token):
            classes[cls] += 1
            class_examples.setdefault(cls, Counter())[token.strip() or token] += 1
        if suf := suffix_class(token):
            suffixes[suf] += 1
        if lo == 0 or "\n" in prev or prev.strip() in (".", "!", "?", '."', '?"', '!"', "<|im_end|>"):
            starts += 1
    if n == 0:
        raise ValueError("no examples to analyse")
    ranked = peaks.most_common(8)
    top = [(_most_common_form(forms[k]), c / n) for k, c in ranked]
    clear_lead = len(top) > 1 and top[0][1] >= LEAD_SHARE and top[0][1] >= LEAD_RATIO * top[1][1]
    dominant = top[0][0] if top and (top[0][1] >= DOMINANT_SHARE or clear_lead) else None

    def context_of(counters: dict[str, Counter[str]]) -> tuple[str, float] | None:
        """The most common neighbour: of the dominant word's examples, else of all examples."""
        if dominant is not None:
            key, count = ranked[0]
            c = counters.get(key, Counter())
            return (c.most_common(1)[0][0], c.most_common(1)[0][1] / count) if c else None
        total: Counter[str] = sum(counters.values(), Counter())
        return (total.most_common(1)[0][0], total.most_common(1)[0][1] / n) if total else None

    cls = classes.most_common(1)[0] if classes else None
    suf = suffixes.most_common(1)[0] if suffixes else None
    return Analysis(
        n=n,
        dominant=dominant,
        share=top[0][1] if top else 0.0,
        top_tokens=top,
        prev=context_of(prevs),
        next=context_of(nexts),
        token_class=(cls[0], cls[1] / n) if cls else None,
        suffix=(suf[0], suf[1] / n) if suf else None,
        sentence_start=starts / n,
        logits=[
            t.strip() for t in top_logits if t.startswith(" ") and t.strip().isalpha() and len(t.strip()) > 2
        ][:5],
        examples_of_class=[t for t, _ in class_examples[cls[0]].most_common(3)] if cls else [],
    )


def _quote_list(tokens: Sequence[str], k: int = 3) -> str:
    return ", ".join(show(t) for t in tokens[:k])


def analysis_candidates(a: Analysis, context: str | None) -> list[str]:
    """Short descriptions the analysis supports, most specific last (deduplicated, order kept)."""
    out: list[str] = []
    ctx_prev = a.prev if a.prev and a.prev[1] >= 0.5 else None
    ctx_next = a.next if a.next and a.next[1] >= 0.5 else None
    if a.dominant is not None:
        tok = show(a.dominant)
        out.append(tok)
        if ctx_prev:
            out.append(f"{tok} after {show(ctx_prev[0])}")
        if ctx_next:
            out.append(f"{tok} before {show(ctx_next[0])}")
        if ctx_prev and ctx_next and a.dominant.strip():
            joined = f"{ctx_prev[0]}{a.dominant.strip()}{ctx_next[0]}"
            out.append(f'{tok} in "{joined}"')
            if context:
                out.append(f'{tok} in "{joined}" {context}')
        if a.sentence_start >= 0.6:
            out.append(f"{tok} at the start of a sentence")
        others = [t for t, s in a.top_tokens[1:3] if s >= 0.1]
        if others:
            out.append(f"{tok} (also {_quote_list(others, 2)})")
        if context:
            out.append(f"{tok} in {context}")
        return list(dict.fromkeys(out))
    tokens = [t for t, _ in a.top_tokens]
    if a.token_class and a.token_class[1] >= 0.5 and a.token_class[0] != "whitespace":
        label = a.token_class[0]
        out.append(f"{label} ({_quote_list(a.examples_of_class)})")
        out.append(label)
        if context:
            out.append(f"{label} in {context}")
    if a.suffix and a.suffix[1] >= 0.5:
        out.append(f"{a.suffix[0]} ({_quote_list(tokens)})")
    out.append(_quote_list(tokens))
    if context:
        out.append(f"{_quote_list(tokens, 2)} in {context}")
        out.append(context)
    if a.sentence_start >= 0.6:
        out.append(f"the first word of a sentence ({_quote_list(tokens, 2)})")
    return list(dict.fromkeys(out))


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
    i = _peak(ex)
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
    t = token.strip().lower()
    if not t:
        return "line" in text.lower()
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
        own = [ex for ex in focus if peak_word(ex, _peak(ex))[0].strip().lower() == key]
        focus = own or focus
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
    if a.dominant is not None:
        for c in eligible:
            if not names_token(c.text, a.dominant):
                c.rejected = f"does not name the dominant token {show(a.dominant)}"
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
        analysis={
            "n_examples": a.n,
            "dominant": a.dominant,
            "share": round(a.share, 3),
            "top_tokens": [[t, round(s, 3)] for t, s in a.top_tokens],
            "prev": list(a.prev) if a.prev else None,
            "next": list(a.next) if a.next else None,
            "token_class": list(a.token_class) if a.token_class else None,
            "sentence_start": round(a.sentence_start, 3),
            "logits": a.logits,
        },
    )
