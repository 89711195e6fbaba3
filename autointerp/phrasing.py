"""What a feature's examples say about it, in words: the deterministic half of the offline explainer.

Pure functions over `Example`s (no ORM, no model):

- `analyse` finds the word each example peaks on (sub-word pieces joined), the dominant one and its
  share, the token class the peaks share (numbers, punctuation, months, names, function words, code...),
  and the context around the peaks: shared neighbours (`after "of"`) and position patterns (in
  parentheses, at the start of a line or sentence, after a comma, after a name, after a number...).
- `analysis_candidates` turns that into short descriptions. A dominant word is named first and alone,
  followed by a context phrase (`"AP" in parentheses`, `"AP" in news-wire datelines`); without one, a
  token class is named by its class word (`numbers ("1960", "12", "3")`, so that a search for "numbers"
  finds it), and only as a last resort a list of tokens.

autointerp/offline.py scores the candidates and keeps the best.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from autointerp.examples import Example

DOMINANT_SHARE = 0.5
LEAD_SHARE, LEAD_RATIO = 0.35, 1.3  # or a clear lead: >= 35% of peaks and 1.3x the runner-up
CLASS_SHARE = 0.5  # a token class describes the feature when it covers this share of the peaks
CONTEXT_SHARE = 0.5  # a context phrase is used when it holds for this share of the examples
SPECIAL_TOKENS = {"<|im_end|>", "<|im_start|>", "<|endoftext|>"}

# ---------------------------------------------------------------- word lists


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


NUMBER_WORDS = _wordset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "thousand million billion trillion dozen"
)
ORDINALS = _wordset(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth twentieth "
    "hundredth"
)
MONTHS = _wordset(
    "january february march april may june july august september october november december jan feb "
    "mar apr jun jul aug sep sept oct nov dec"
)
WEEKDAYS = _wordset("monday tuesday wednesday thursday friday saturday sunday")
PRONOUNS = _wordset(
    "i you he she it we they me him her us them his its our their my your mine hers ours theirs "
    "himself herself itself themselves myself yourself ourselves"
)
DETERMINERS = _wordset("the a an this that these those some any every each no")
PREPOSITIONS = _wordset(
    "of in on at by for with from to into onto upon about over under after before between through "
    "during against among without within toward towards across behind beyond"
)
CONJUNCTIONS = _wordset(
    "and or but nor so yet because although though while if unless whereas whether"
)
AUXILIARIES = _wordset(
    "is are was were be been being am has have had do does did will would shall should can could may "
    "might must"
)
TITLES = _wordset("mr mrs ms miss dr mr. mrs. ms. dr. sir lord lady gen. gov. sen. rep. st. prof.")
SENTENCE_END = frozenset({".", "!", "?", '."', '?"', '!"', ".'", "''", ".''", "?''", "!''"})
QUOTES = ('"', "``", "''", "'", "\u201c", "\u201d", "\u2018", "\u2019")

# class key -> the words a description uses for it. "numbers" is in the label of every number class.
CLASS_LABELS = {
    "digits": "numbers",
    "years": "numbers: years",
    "number words": "numbers written as words",
    "ordinals": "ordinal numbers",
    "months": "month names",
    "weekdays": "days of the week",
    "pronouns": "pronouns",
    "determiners": "articles and determiners",
    "prepositions": "prepositions",
    "conjunctions": "conjunctions",
    "auxiliaries": "auxiliary verbs",
    "punctuation": "punctuation",
    "names": "capitalised words and names",
    "acronyms": "abbreviations in capitals",
    "code": "code and symbols",
    "line breaks": "line breaks",
}
FAMILIES = {  # a family names a mix of classes when no single class covers the peaks
    "digits": "numbers",
    "years": "numbers",
    "number words": "numbers",
    "ordinals": "numbers",
    "pronouns": "function words",
    "determiners": "function words",
    "prepositions": "function words",
    "conjunctions": "function words",
    "auxiliaries": "function words",
    "months": "dates",
    "weekdays": "dates",
}
PUNCTUATION_NAMES = {
    ",": "commas",
    ".": "periods",
    ";": "semicolons",
    ":": "colons",
    "?": "question marks",
    "!": "exclamation marks",
    "(": "parentheses",
    ")": "parentheses",
    "-": "dashes",
    "--": "dashes",
    "'": "apostrophes",
    '"': "quotation marks",
    "``": "quotation marks",
    "''": "quotation marks",
}


def _is_year(t: str) -> bool:
    return re.fullmatch(r"1[5-9]\d\d|20\d\d|1[5-9]\d0's|'\d\d", t) is not None


def token_class(token: str, prev: str = "") -> str | None:
    """The class of a peak word (see CLASS_LABELS), or None; `prev` (the token before) tells a name
    from a capitalised first word of a sentence."""
    t = token.strip()
    low = t.lower()
    if not t:
        return "line breaks" if "\n" in token else None
    if _is_year(t):
        return "years"
    if re.fullmatch(r"[$\u00a3]?\d[\d,.:/]*%?|\d+(st|nd|rd|th|s)", t):
        return "digits"
    if low in NUMBER_WORDS:
        return "number words"
    if low in ORDINALS:
        return "ordinals"
    if all(c in string.punctuation for c in t):
        return "punctuation"
    if re.search(r"[_{}\[\]=<>\\|`#]|\w\(|\w\.\w+\(|\+\+|::|->", t):
        return "code"
    if low in MONTHS and (t[0].isupper() or len(low) > 3):
        return "months"
    if low in WEEKDAYS:
        return "weekdays"
    for words, key in (
        (PRONOUNS, "pronouns"),
        (DETERMINERS, "determiners"),
        (PREPOSITIONS, "prepositions"),
        (CONJUNCTIONS, "conjunctions"),
        (AUXILIARIES, "auxiliaries"),
    ):
        if low in words:
            return key
    if t.isalpha() and t.isupper() and len(t) >= 2:
        return "acronyms"
    if t[0].isupper() and t.replace("'", "").replace("-", "").isalpha():
        p = prev.strip()
        if p and p not in SENTENCE_END and "\n" not in prev and prev not in SPECIAL_TOKENS:
            return "names"
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
    return f"'{token.strip()}'" if '"' in token else f'"{token.strip()}"'


def quote_list(tokens: Sequence[str], k: int = 3) -> str:
    return ", ".join(show(t) for t in tokens[:k])


# ---------------------------------------------------------------- peaks


def peak_index(example: Example) -> int:
    return int(np.argmax(example.values)) if example.values else 0


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
        and ex.tokens[lo - 1] not in SPECIAL_TOKENS
    ):
        lo -= 1
    hi = i + 1
    while (
        hi < len(ex.tokens)
        and _continues_word(ex.tokens[hi])
        and ex.tokens[hi - 1].strip()
        and ex.tokens[hi - 1].strip()[-1].isalnum()
    ):
        hi += 1
    return "".join(ex.tokens[lo:hi]), lo, hi


@dataclass(frozen=True)
class Peak:
    """The word an example peaks on and what surrounds it."""

    word: str  # as written, sub-word pieces joined, leading space kept
    prev: str  # the token before the word ("" at the start of the example)
    next: str  # the token after it
    value: float = 1.0  # the activation at the peak
    before: tuple[str, ...] = ()  # up to 6 tokens before the word
    after: tuple[str, ...] = ()  # up to 3 tokens after it

    @property
    def key(self) -> str:
        return self.word.strip().lower() or self.word

    @property
    def line_start(self) -> bool:
        return "\n" in self.prev or self.prev in SPECIAL_TOKENS or self.word.startswith("\n")

    @property
    def sentence_start(self) -> bool:
        return self.line_start or self.prev.strip() in SENTENCE_END


def peak_of(ex: Example) -> Peak:
    i = peak_index(ex)
    word, lo, hi = peak_word(ex, i) if ex.tokens[i].strip().isalnum() else (ex.tokens[i], i, i + 1)
    return Peak(
        word=word,
        prev=ex.tokens[lo - 1] if lo > 0 else "",
        next=ex.tokens[hi] if hi < len(ex.tokens) else "",
        value=max(ex.max_value, 0.0),
        before=tuple(ex.tokens[max(0, lo - 6) : lo]),
        after=tuple(ex.tokens[hi : hi + 3]),
    )


# ---------------------------------------------------------------- context phrases


def _punct(t: str, chars: str) -> bool:
    s = t.strip()
    return bool(s) and s[0] in chars


def _after_date(p: Peak) -> bool:
    """A month name followed by a day or year shortly before the word ("May 1 --", "Oct. 24")."""
    words = [t.strip().lower().rstrip(".") for t in p.before]
    return any(
        w in MONTHS and any(t.strip().isdigit() for t in p.before[i + 1 :]) for i, w in enumerate(words)
    )


def _in_dateline(p: Peak) -> bool:
    """A news dateline: "PLACE, State, Date -- (AGENCY) --" or "PLACE (AGENCY) --": a dash right after the
    word (or its closing parenthesis) and a place or date before it."""
    dash_after = any(t.strip() in ("--", "-", "\u2014") for t in p.after[:2])
    place_before = any(_capitalised(t) and t.strip().lower() not in TITLES for t in p.before[-4:])
    return dash_after and (place_before or _after_date(p))


def _capitalised(t: str) -> bool:
    s = t.strip()
    return bool(s) and s[0].isupper() and s.replace(".", "").replace("'", "").isalpha()


# (phrase, test) in order of preference among equal shares; the first ones are the most specific
CONTEXT_TESTS: list[tuple[str, Callable[[Peak], bool]]] = [
    ("in news-wire datelines", _in_dateline),
    ("in parentheses", lambda p: p.prev.strip().endswith("(") and p.next.strip().startswith(")")),
    (
        "in quotation marks",
        lambda p: p.prev.strip().endswith(QUOTES) and p.next.strip().startswith(QUOTES),
    ),
    ("after a title", lambda p: p.prev.strip().lower() in TITLES),
    ("at the start of a line", lambda p: p.line_start),
    ("at the start of a sentence", lambda p: p.sentence_start),
    ("after a comma", lambda p: p.prev.strip() == ","),
    ("after a number", lambda p: token_class(p.prev) in ("digits", "years", "number words")),
    ("before a number", lambda p: token_class(p.next) in ("digits", "years", "number words")),
    ("after a date", _after_date),
    ("after a preposition", lambda p: p.prev.strip().lower() in PREPOSITIONS),
    ("after an article", lambda p: p.prev.strip().lower() in ("the", "a", "an")),
    ("after a pronoun", lambda p: p.prev.strip().lower() in PRONOUNS),
    ("after a name", lambda p: _capitalised(p.prev) and token_class(p.prev, "x") == "names"),
    ("before a name", lambda p: _capitalised(p.next) and token_class(p.next, "x") == "names"),
    ("at the end of a sentence", lambda p: p.next.strip()[:1] in (".", "!", "?") and bool(p.next.strip())),
    ("before a comma", lambda p: p.next.strip().startswith(",")),
]
# a phrase that makes another redundant when both hold
IMPLIES = {
    # a dateline's agency is in parentheses after a place or date: the dateline is the finding
    "in news-wire datelines": ("in parentheses", 'after "("', 'before ")"', "after a date", "after a name"),
    "in parentheses": ('after "("', 'before ")"'),
    "in quotation marks": ("after a quote", "before a quote"),
    "at the start of a line": ("at the start of a sentence",),
}


def context_phrases(peaks: Sequence[Peak], *, min_share: float = CONTEXT_SHARE) -> list[tuple[str, float]]:
    """Context phrases that hold for at least `min_share` of `peaks`, most common first: position
    patterns (CONTEXT_TESTS) and shared neighbours (`after "of"`, `before ")"`)."""
    n = len(peaks)
    if n == 0:
        return []
    found: list[tuple[str, float]] = []
    for phrase, test in CONTEXT_TESTS:
        share = sum(test(p) for p in peaks) / n
        if share >= min_share:
            found.append((phrase, share))
    for side, attr in (("after", "prev"), ("before", "next")):
        counts = Counter(
            getattr(p, attr).strip() for p in peaks if getattr(p, attr).strip() not in ("", *SPECIAL_TOKENS)
        )
        if counts:
            token, count = counts.most_common(1)[0]
            if count / n >= min_share:
                found.append((f"{side} {show(token)}", count / n))
    redundant = {r for phrase, _ in found for r in IMPLIES.get(phrase, ())}
    found = [(ph, s) for ph, s in found if ph not in redundant]
    order = {ph: i for i, (ph, _) in enumerate(found)}
    return sorted(found, key=lambda f: (-round(f[1], 2), order[f[0]]))


# ---------------------------------------------------------------- analysis


@dataclass
class Analysis:
    n: int
    dominant: str | None  # the dominant peak word (display form) when it leads (DOMINANT_SHARE or LEAD_*)
    share: float
    top_tokens: list[tuple[str, float]]  # (display form, share), most common first
    contexts: list[tuple[str, float]]  # context phrases of the dominant word's examples (else of all)
    token_class: tuple[str, float] | None  # (class key, share of peaks)
    class_label: str | None  # words for the class, e.g. "numbers" / "commas"
    class_examples: list[str] = field(default_factory=list)
    suffix: tuple[str, float] | None = None
    logits: list[str] = field(default_factory=list)

    @property
    def prev(self) -> tuple[str, float] | None:
        return next(((ph[7:-1], s) for ph, s in self.contexts if ph.startswith('after "')), None)

    @property
    def next(self) -> tuple[str, float] | None:
        return next(((ph[8:-1], s) for ph, s in self.contexts if ph.startswith('before "')), None)

    def as_json(self) -> dict[str, object]:
        return {
            "n_examples": self.n,
            "dominant": self.dominant,
            "share": round(self.share, 3),
            "top_tokens": [[t, round(s, 3)] for t, s in self.top_tokens],
            "contexts": [[c, round(s, 3)] for c, s in self.contexts],
            "token_class": [self.token_class[0], round(self.token_class[1], 3)] if self.token_class else None,
            "class_label": self.class_label,
            "logits": self.logits,
        }


def _class_label(key: str, members: Counter[str]) -> str:
    if key == "punctuation":
        names = Counter()
        for tok, c in members.items():
            names[PUNCTUATION_NAMES.get(tok, "punctuation")] += c
        name, count = names.most_common(1)[0]
        return name if count >= 0.7 * sum(names.values()) else "punctuation marks"
    return CLASS_LABELS.get(key, key)


def classify(peaks: Sequence[Peak]) -> tuple[tuple[str, float] | None, str | None, list[str]]:
    """The token class the peaks share: ((key, share), label, example members), or (None, None, [])."""
    n = len(peaks)
    classes: Counter[str] = Counter()
    members: dict[str, Counter[str]] = {}
    for p in peaks:
        if key := token_class(p.word, p.prev):
            classes[key] += 1
            members.setdefault(key, Counter())[p.word.strip() or p.word] += 1
    if not classes:
        return None, None, []
    key, count = classes.most_common(1)[0]
    families: Counter[str] = Counter()
    for k, c in classes.items():
        if k in FAMILIES:
            families[FAMILIES[k]] += c
    # a family of classes (numbers, function words, dates) when no class covers the peaks, or when it
    # covers clearly more of them (digits and years are both numbers)
    if families and (fam := families.most_common(1)[0])[1] / n >= CLASS_SHARE and (
        count / n < CLASS_SHARE or fam[1] - count >= 0.1 * n
    ):
        family, count = fam
        merged = sum((members[k] for k in classes if FAMILIES.get(k) == family), Counter())
        return (family, count / n), family, [t for t, _ in merged.most_common(3)]
    return (key, count / n), _class_label(key, members[key]), [t for t, _ in members[key].most_common(3)]


def analyse(examples: Sequence[Example], top_logits: Sequence[str] = ()) -> Analysis:
    """Statistics of the peak words of `examples` (see the module docstring). ValueError when empty."""
    peaks = [peak_of(ex) for ex in examples if ex.tokens]
    n = len(peaks)
    if n == 0:
        raise ValueError("no examples to analyse")
    # shares of the activation mass at the peaks: the strongest examples count most ("AP" of "(AP)" peaks
    # higher than the "A"s that share its feature)
    # higher than the "A"s that share its feature); one outlier counts at most twice the median example
    cap = 2 * float(np.median([p.value for p in peaks])) or 1.0
    mass: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    for p in peaks:
        mass[p.key] += min(p.value, cap) or 1e-9
        forms.setdefault(p.key, Counter())[p.word.strip() or p.word] += 1
    total = sum(mass.values())
    ranked = mass.most_common(8)
    top = [(forms[k].most_common(1)[0][0], m / total) for k, m in ranked]
    clear_lead = len(top) > 1 and top[0][1] >= LEAD_SHARE and top[0][1] >= LEAD_RATIO * top[1][1]
    dominant = top[0][0] if top[0][1] >= DOMINANT_SHARE or clear_lead else None
    own = [p for p in peaks if p.key == ranked[0][0]] if dominant is not None else peaks
    cls, label, members = classify(peaks)
    suffixes = Counter(s for p in peaks if (s := suffix_class(p.word)))
    suf = suffixes.most_common(1)[0] if suffixes else None
    return Analysis(
        n=n,
        dominant=dominant,
        share=top[0][1],
        top_tokens=top,
        contexts=context_phrases(own),
        token_class=cls,
        class_label=label,
        class_examples=members,
        suffix=(suf[0], suf[1] / n) if suf else None,
        logits=[
            t.strip() for t in top_logits if t.startswith(" ") and t.strip().isalpha() and len(t.strip()) > 2
        ][:5],
    )


# ---------------------------------------------------------------- descriptions


def analysis_candidates(a: Analysis, context: str | None) -> list[str]:
    """Short descriptions the analysis supports (deduplicated, order kept). `context` is a kind of text
    chosen by the embedder (offline.choose_context), e.g. "news-wire datelines"."""
    phrases = [ph for ph, _ in a.contexts[:3]]
    out: list[str] = []
    if a.dominant is not None:
        head = show(a.dominant)
        kin = _kin(a)
        for ph in phrases:
            out.append(f"{head} {ph}")
        if context:
            out.append(f"{head} in {context}")
            if phrases:
                out.append(f"{head} {phrases[0]} in {context}")
        if kin:
            out.append(f"{head} and other {kin}" + (f" {phrases[0]}" if phrases else ""))
        if not out:
            out.append(head)
        return list(dict.fromkeys(out))
    tokens = [t for t, _ in a.top_tokens]
    if a.token_class and a.class_label and a.token_class[1] >= CLASS_SHARE:
        label, examples = a.class_label, quote_list(a.class_examples)
        out.append(f"{label} ({examples})")
        out.append(label)
        for ph in phrases[:2]:
            out.append(f"{label} {ph}")
        if context:
            out.append(f"{label} in {context}")
    if a.suffix and a.suffix[1] >= 0.5:
        out.append(f"{a.suffix[0]} ({quote_list(tokens)})")
    if not out:
        for ph in phrases[:2]:
            out.append(f"words {ph} ({quote_list(tokens, 2)})")
        if context:
            out.append(f"{quote_list(tokens, 2)} in {context}")
    if not out:
        out.append(quote_list(tokens))
    return list(dict.fromkeys(out))


def _kin(a: Analysis) -> str | None:
    """The class a dominant word shares with most of the other peaks ("the" and other articles), when
    the dominant word leaves room for others."""
    if a.token_class is None or a.class_label is None or a.share >= 0.8:
        return None
    if token_class(a.dominant or "") is None or a.token_class[1] < 0.7:
        return None
    return a.class_label if not a.class_label.startswith("numbers:") else "numbers"


def required_words(a: Analysis) -> str | None:
    """What every kept description must name: the dominant word, else the class label's first word
    (so an LLM label cannot replace "numbers" with something a search for numbers will not find)."""
    if a.dominant is not None:
        return a.dominant
    if a.token_class and a.class_label and a.token_class[1] >= 0.6:
        return a.class_label.split(":")[0].split()[0]
    return None
