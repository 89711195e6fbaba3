"""Explainers: feature evidence (top activating examples, top logits) -> a short LLM-written label.

Two methods, each usable with any backend (an OpenAI-compatible endpoint or the local SmolLM2):
- `np_max-act-logits`: Neuronpedia's "max-activating examples + top logits" explainer.
- `eleuther_acts_top20`: EleutherAI delphi's DefaultExplainer (the one Neuronpedia's autointerp server
  exposes) on the top 20 examples.

Compute only: evidence is built from ORM rows by `evidence_for_feature`, the rest is pure.
"""

from __future__ import annotations

import asyncio
import re
import sys
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from autointerp.examples import Example
from autointerp.llm import LOCAL_MODEL, ChatBackend, Messages, UnparseableOutput
from autointerp.offline import SplitExamples, explain_offline, feature_examples, split_examples

NP_MAX_ACT_LOGITS = "np_max-act-logits"
DELPHI_DEFAULT = "eleuther_acts_top20"


@dataclass(frozen=True)
class FeatureEvidence:
    feature_id: int
    examples: tuple[Example, ...]
    top_logits: tuple[str, ...] = ()
    bottom_logits: tuple[str, ...] = ()
    # Quantile-bin examples the explainer may also see, and the examples held out for scoring (never
    # shown to an explainer; see autointerp.offline.split_examples).
    quantile: tuple[Example, ...] = ()
    held_out: tuple[Example, ...] = ()


@dataclass(frozen=True)
class ExplainerSettings:
    max_examples: int = 10
    max_tokens: int = 60
    temperature: float = 0.0
    threshold: float = 0.5  # share of an example's max that marks a token as active (<<token>>)
    context: int = 12  # tokens kept either side of the max token (np_max-act-logits)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_examples < 1:
            raise ValueError("max_examples must be >= 1")
        if not 0 <= self.threshold <= 1:
            raise ValueError("threshold must be in [0, 1]")

    @classmethod
    def for_model(cls, explainer_type: str, model: str, **overrides: Any) -> ExplainerSettings:
        """Defaults per method; the local 135M model gets a shorter prompt and answer."""
        base: dict[str, Any] = {"max_examples": 20 if explainer_type == DELPHI_DEFAULT else 10}
        if model == LOCAL_MODEL:
            base.update(max_examples=5, max_tokens=12, context=8)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExplainResult:
    text: str
    raw: str
    method: str = "llm"  # "llm" or "token-analysis" (stored on Explanation.method)
    details: dict[str, Any] = field(default_factory=dict)


def evidence_for_feature(feature: Any, *, limit: int = 40) -> FeatureEvidence:
    """What an explainer may see of a feature: the even ranks of its top examples (deduplicated by text,
    strongest first) and of its quantile examples, and its top logits. The odd ranks are held out for
    scoring (`held_out`), so every explainer's score is measured on examples it did not see."""
    top, quantile = feature_examples(feature)
    split = split_examples(top[: 2 * limit], quantile)
    return FeatureEvidence(
        feature_id=feature.pk,
        examples=tuple(top[: 2 * limit][0::2]),
        quantile=tuple(quantile[0::2]),
        held_out=split.held_out,
        top_logits=tuple(feature.pos_str or ())[:10],
        bottom_logits=tuple(feature.neg_str or ())[:10],
    )


def _clean_token(token: str) -> str:
    return token.replace("\n", "\\n")


def _highlight(example: Example, threshold: float, context: int | None = None) -> str:
    values = example.values
    top = example.max_value
    start, end = 0, len(values)
    if context is not None and values:
        peak = values.index(top)
        start, end = max(0, peak - context), min(len(values), peak + context + 1)
    parts = []
    for token, value in zip(example.tokens[start:end], values[start:end], strict=False):
        token = _clean_token(token)
        parts.append(f"<<{token}>>" if top > 0 and value >= threshold * top else token)
    return "".join(parts).replace(">><<", "")


NP_SYSTEM = (
    "You are explaining the behavior of a feature (a direction) in a language model. You are shown text "
    "excerpts where the feature is most active (active tokens are marked <<like this>>), the tokens it "
    "fires on most, and the tokens it makes more likely as the next token. Answer with a very concise "
    "explanation of 1 to 6 words of what the feature detects or predicts. Do not explain your reasoning."
)


# one worked example: small local models copy the answer's form instead of describing the prompt
NP_FEW_SHOT = [
    {
        "role": "user",
        "content": "Tokens with the highest activation: Paris, London, Berlin\n"
        "Top predicted next tokens: France, city\nExcerpts:\n1. We flew to<< Paris>> in May\n"
        "2. The rain in<< London>> stopped\n3. She moved to<< Berlin>> last year\nExplanation (1-6 words):",
    },
    {"role": "assistant", "content": "European capital city names"},
]


def np_max_act_logits_prompt(evidence: FeatureEvidence, settings: ExplainerSettings) -> Messages:
    examples = evidence.examples[: settings.max_examples]
    counts: Counter[str] = Counter()
    for example in examples:
        peak = example.values.index(example.max_value)
        counts[_clean_token(example.tokens[peak]).strip() or repr(example.tokens[peak])] += 1
    lines = [f"Tokens with the highest activation: {', '.join(tok for tok, _ in counts.most_common(8))}"]
    if evidence.top_logits:
        lines.append(
            f"Top predicted next tokens: {', '.join(_clean_token(t).strip() for t in evidence.top_logits)}"
        )
    lines.append("Excerpts:")
    lines += [
        f"{i + 1}. {_highlight(ex, settings.threshold, settings.context)}" for i, ex in enumerate(examples)
    ]
    lines.append("Explanation (1-6 words):")
    return [
        {"role": "system", "content": NP_SYSTEM},
        *NP_FEW_SHOT,
        {"role": "user", "content": "\n".join(lines)},
    ]


_PREFIX_RE = re.compile(
    r"^\s*(\[?explanation\]?\s*:|the feature (detects|is)|this feature (detects|is))\s*", re.IGNORECASE
)


def parse_short_explanation(raw: str, *, max_chars: int = 200) -> str:
    """First non-empty line, without a label prefix, quotes or a trailing period."""
    line = next((ln.strip() for ln in raw.strip().splitlines() if ln.strip()), "")
    line = _PREFIX_RE.sub("", line).strip().strip("\"'`*").rstrip(".").strip()
    if not line or len(line) < 2:
        raise UnparseableOutput(f"no explanation in the LLM output: {raw[:200]!r}")
    return line[:max_chars]


def explain_np_max_act_logits(
    evidence: FeatureEvidence, backend: ChatBackend, settings: ExplainerSettings
) -> ExplainResult:
    raw = backend.complete(
        np_max_act_logits_prompt(evidence, settings),
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
    )
    return ExplainResult(text=parse_short_explanation(raw), raw=raw)


# ---------------------------------------------------------------- delphi


def import_delphi() -> types.ModuleType:
    """Import delphi without vllm: its clients package eagerly imports a vllm-based Offline client."""
    if "delphi.clients.offline" not in sys.modules:
        stub = types.ModuleType("delphi.clients.offline")
        stub.Offline = type("Offline", (), {})  # type: ignore[attr-defined]
        sys.modules["delphi.clients.offline"] = stub
    import delphi  # noqa: PLC0415

    return delphi


class DelphiClient:
    """A delphi `Client` over one of our backends. Records errors and raw answers so a scorer run whose
    calls all failed ends with the reason (delphi itself logs and drops them)."""

    def __init__(self, backend: ChatBackend, *, max_tokens: int = 300) -> None:
        from delphi.clients.client import Client  # noqa: PLC0415

        self._base = Client
        self.backend = backend
        self.model = backend.model_name
        self.max_tokens = max_tokens
        self.errors: list[Exception] = []
        self.answers: list[str] = []

    async def generate(self, prompt: Any, **kwargs: Any) -> Any:
        from delphi.clients.client import Response  # noqa: PLC0415

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        try:
            text = await asyncio.to_thread(
                self.backend.complete,
                messages,
                max_tokens=int(kwargs.get("max_tokens", self.max_tokens)),
                temperature=float(kwargs.get("temperature", 0.0)),
            )
        except Exception as exc:
            self.errors.append(exc)
            raise
        self.answers.append(text)
        return Response(text=text)


def as_delphi_client(backend: ChatBackend, **kwargs: Any) -> Any:
    import_delphi()
    from delphi.clients.client import Client  # noqa: PLC0415

    adapter = type("BackendClient", (DelphiClient, Client), {})
    return adapter(backend, **kwargs)


def activating_example(example: Example, quantile: int = 0) -> Any:
    import_delphi()
    import torch  # noqa: PLC0415
    from delphi.latents.latents import ActivatingExample  # noqa: PLC0415

    values = torch.tensor(example.values, dtype=torch.float32)
    top = float(values.max()) if len(values) else 0.0
    normalized = torch.floor(values.clamp(min=0) / top * 10) if top > 0 else torch.zeros_like(values)
    return ActivatingExample(
        tokens=torch.zeros(len(values), dtype=torch.long),
        activations=values,
        normalized_activations=normalized,
        str_tokens=list(example.tokens),
        quantile=quantile,
    )


def explain_delphi_default(
    evidence: FeatureEvidence, backend: ChatBackend, settings: ExplainerSettings
) -> ExplainResult:
    import_delphi()
    from delphi.explainers import DefaultExplainer  # noqa: PLC0415
    from delphi.latents.latents import Latent, LatentRecord  # noqa: PLC0415

    client = as_delphi_client(backend, max_tokens=settings.max_tokens)
    record = LatentRecord(latent=Latent("feature", evidence.feature_id))
    record.train = [activating_example(ex) for ex in evidence.examples[: settings.max_examples]]
    explainer = DefaultExplainer(
        client=client, threshold=settings.threshold, temperature=settings.temperature, activations=True
    )
    result = asyncio.run(explainer(record))
    raw = client.answers[-1] if client.answers else ""
    if result.explanation.strip() in ("", "Explanation could not be parsed."):
        if "[EXPLANATION]" not in raw and raw.strip():
            return ExplainResult(text=parse_short_explanation(raw), raw=raw)
        raise UnparseableOutput(f"delphi could not parse the explanation: {raw[:200]!r}")
    return ExplainResult(text=result.explanation.strip()[:500], raw=raw)


def explain_offline_best(
    evidence: FeatureEvidence, backend: ChatBackend | None, settings: ExplainerSettings
) -> ExplainResult:
    """The offline explainer (autointerp.offline): token analysis + constrained local LLM, best kept."""
    split = SplitExamples(
        seen=evidence.examples + evidence.quantile,
        held_out=evidence.held_out,
        n_seen_top=len(evidence.examples),  # the analysis describes the top group, as in the bench
        top_logits=evidence.top_logits,
        bottom_logits=evidence.bottom_logits,
    )
    result = explain_offline(split, backend=backend, use_llm=str(settings.extra.get("use_llm", "auto")))
    return ExplainResult(text=result.text, raw="", method=result.method, details=result.as_json())


def explain_np_max_act(
    evidence: FeatureEvidence, backend: ChatBackend, settings: ExplainerSettings
) -> ExplainResult:
    """Neuronpedia's `np_max-act`: the max-activating excerpts and tokens only (no logits)."""
    bare = FeatureEvidence(feature_id=evidence.feature_id, examples=evidence.examples)
    return explain_np_max_act_logits(bare, backend, settings)


OAI_SYSTEM = (
    "We're studying neurons in a neural network. Each neuron looks for some particular thing in a short "
    "document. Look at the parts of the document the neuron activates for and summarize in a single "
    "sentence what the neuron is looking for. Don't list examples of words.\n\nThe activation format is "
    "token<tab>activation. Activation values range from 0 to 10. A neuron finding what it's looking for is "
    "represented by a non-zero activation value. The higher the activation value, the stronger the match."
)
OAI_LEAD = "the main thing this neuron does is find"


def oai_token_act_pair_prompt(evidence: FeatureEvidence, settings: ExplainerSettings) -> Messages:
    blocks = []
    for example in evidence.examples[: settings.max_examples]:
        top = example.max_value or 1.0
        peak = example.values.index(example.max_value)
        lo, hi = max(0, peak - settings.context), min(len(example.values), peak + settings.context + 1)
        rows = [f"{_clean_token(t)}\t{max(0, round(10 * v / top))}"
                for t, v in zip(example.tokens[lo:hi], example.values[lo:hi], strict=False)]
        blocks.append("<start>\n" + "\n".join(rows) + "\n<end>")
    user = ("Neuron\nActivations:\n" + "\n\n".join(blocks)
            + f"\n\nExplanation of neuron behavior: {OAI_LEAD}")
    return [{"role": "system", "content": OAI_SYSTEM}, {"role": "user", "content": user}]


def explain_oai_token_act_pair(
    evidence: FeatureEvidence, backend: ChatBackend, settings: ExplainerSettings
) -> ExplainResult:
    """OpenAI's token-activation-pair explainer (Bills et al. 2023) as Neuronpedia runs it."""
    raw = backend.complete(oai_token_act_pair_prompt(evidence, settings), max_tokens=settings.max_tokens,
                           temperature=settings.temperature)
    text = raw.strip()
    if text.lower().startswith(OAI_LEAD):
        text = text[len(OAI_LEAD):]
    return ExplainResult(text=parse_short_explanation(text), raw=raw)


ATT_SYSTEM = (
    "We're studying attention heads in a transformer. Each head attends from some tokens to earlier "
    "tokens. In each excerpt the token the head is most active on is marked <<like this>>. Describe in "
    "a few words what this attention head does, starting after 'this attention head'."
)


def explain_oai_attention_head(
    evidence: FeatureEvidence, backend: ChatBackend, settings: ExplainerSettings
) -> ExplainResult:
    """Neuronpedia's `oai_attention-head` for attention (hook_z) features: the excerpts with the active
    token marked; the answer continues 'this attention head ...'."""
    lines = [f"{i + 1}. {_highlight(ex, settings.threshold, settings.context)}"
             for i, ex in enumerate(evidence.examples[: settings.max_examples])]
    messages = [{"role": "system", "content": ATT_SYSTEM},
                {"role": "user", "content": "\n".join(lines) + "\nExplanation: this attention head"}]
    raw = backend.complete(messages, max_tokens=settings.max_tokens, temperature=settings.temperature)
    return ExplainResult(text=parse_short_explanation(raw), raw=raw)


ExplainFn = Callable[[FeatureEvidence, ChatBackend, ExplainerSettings], ExplainResult]
OFFLINE = "np_offline"
NP_MAX_ACT = "np_max-act"
OAI_TOKEN_ACT_PAIR = "oai_token-act-pair"  # noqa: S105 (a method name)
OAI_ATTENTION_HEAD = "oai_attention-head"
EXPLAINERS: dict[str, ExplainFn] = {
    OFFLINE: explain_offline_best,  # type: ignore[dict-item]
    NP_MAX_ACT_LOGITS: explain_np_max_act_logits,
    NP_MAX_ACT: explain_np_max_act,
    DELPHI_DEFAULT: explain_delphi_default,
    OAI_TOKEN_ACT_PAIR: explain_oai_token_act_pair,
    OAI_ATTENTION_HEAD: explain_oai_attention_head,
}
EXPLAINER_DESCRIPTIONS = {
    OFFLINE: "Offline: token analysis + constrained SmolLM2, best candidate kept",
    NP_MAX_ACT_LOGITS: "Neuronpedia: max-activating examples + top logits",
    NP_MAX_ACT: "Neuronpedia: max-activating examples",
    DELPHI_DEFAULT: "EleutherAI delphi DefaultExplainer on the top 20 examples",
    OAI_TOKEN_ACT_PAIR: "OpenAI: token / activation pairs",
    OAI_ATTENTION_HEAD: "OpenAI-style: attention head behaviour",
}
# Explainers that need no LLM endpoint (run with the local model or none)
OFFLINE_EXPLAINERS = (OFFLINE,)


def explain(
    evidence: FeatureEvidence, *, explainer_type: str, backend: ChatBackend, settings: ExplainerSettings
) -> ExplainResult:
    """Write an explanation. Raises ProviderError, UnparseableOutput, or ValueError (no examples)."""
    try:
        fn = EXPLAINERS[explainer_type]
    except KeyError:
        raise ValueError(f"unknown explainer {explainer_type!r}; known: {', '.join(EXPLAINERS)}") from None
    if not evidence.examples:
        raise ValueError(f"feature {evidence.feature_id} has no activating examples to explain")
    return fn(evidence, backend, settings)
