"""The explanation types (explainers) and score types (scorers) this instance runs, with Neuronpedia's
names, for the catalog pages (/explanation-types/): what each does, what it needs, and its prompt."""

from __future__ import annotations

from dataclasses import dataclass

from autointerp import explainers, offline, scorers


@dataclass(frozen=True)
class TypeSpec:
    name: str
    display_name: str
    description: str
    needs: str  # "offline" or "an OpenAI-compatible endpoint"
    prompt: str = ""
    url_name: str = "autointerp:explanation-type"


LLM = "an OpenAI-compatible endpoint (your key on the LLM keys page, the server's, or the local SmolLM2)"

EXPLAINER_TYPES = {spec.name: spec for spec in [
    TypeSpec(explainers.OFFLINE, "Offline: token analysis + constrained SmolLM2",
             "A deterministic analysis of the top and quantile examples (the dominant activating word and "
             "its share, the tokens around it, token classes, sentence position, a context label chosen by "
             "the local embedder) writes short candidates such as \"AP\" in \"(AP)\"; where no word "
             "dominates, the local SmolLM2 adds one constrained candidate (few-shot, at most 8 words, "
             "rejected when it echoes the examples). Candidates are scored on the examples the explainer "
             "saw; the best one naming the dominant word is kept, and its score is then measured on "
             "held-out examples. Each explanation records which method won (token-analysis or llm).",
             "offline", offline.LLM_SYSTEM),
    TypeSpec(explainers.NP_MAX_ACT_LOGITS, "Max activations + top logits (Neuronpedia)",
             "The LLM sees the max-activating excerpts (active tokens marked), the tokens the feature fires "
             "on most, and the tokens it promotes; it answers with 1-6 words.", LLM, explainers.NP_SYSTEM),
    TypeSpec(explainers.NP_MAX_ACT, "Max activations (Neuronpedia)",
             "As np_max-act-logits, without the logits.", LLM, explainers.NP_SYSTEM),
    TypeSpec(explainers.DELPHI_DEFAULT, "Top 20 activations (EleutherAI delphi)",
             "delphi's DefaultExplainer on the top 20 examples, activations shown.", LLM,
             "delphi DefaultExplainer prompt (see the eai-delphi package)"),
    TypeSpec(explainers.OAI_TOKEN_ACT_PAIR, "Token-activation pairs (OpenAI)",
             "Each excerpt is sent as token<tab>activation (0-10) lines; the LLM completes 'the main thing "
             "this neuron does is find…'.", LLM, explainers.OAI_SYSTEM),
    TypeSpec(explainers.OAI_ATTENTION_HEAD, "Attention head (OpenAI-style)",
             "For attention features: excerpts with the active token marked; the LLM completes 'this "
             "attention head…'.", LLM, explainers.ATT_SYSTEM),
]}

SCORER_TYPES = {spec.name: spec for spec in [
    TypeSpec(scorers.EMBEDDING, "Embedding ROC-AUC (held-out)",
             "all-MiniLM-L6-v2 (local) embeds the explanation and short windows of text: the tokens around "
             "the peak of HELD-OUT activating examples (never shown to an explainer) and corpus text where "
             "the feature is exactly zero. The score is the ROC-AUC of the similarity separating the two "
             "(0.5 = chance). The default, shown with every explanation; recomputed when the explanation "
             "text or this scorer changes.", "offline", "", "autointerp:score-type"),
    TypeSpec(scorers.DETECTION, "Detection (EleutherAI delphi)",
             "Batches of 5 texts; the LLM says which match the explanation. Balanced accuracy.", LLM,
             "delphi DetectionScorer prompt", "autointerp:score-type"),
    TypeSpec(scorers.FUZZ, "Fuzzing (EleutherAI delphi)",
             "Batches of 5 texts with tokens highlighted; the LLM says whether the highlights fit the "
             "explanation. Balanced accuracy.", LLM, "delphi FuzzingScorer prompt", "autointerp:score-type"),
    TypeSpec(scorers.RECALL_ALT, "Recall (Neuronpedia)",
             "One yes/no call per text (held-out activating windows and non-activating text): does the "
             "text contain what the explanation describes? Balanced accuracy.", LLM, scorers.RECALL_SYSTEM,
             "autointerp:score-type"),
]}
