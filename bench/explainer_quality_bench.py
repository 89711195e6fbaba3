"""Explainer quality bench (issue #16): the old LLM-only offline explainer vs the new offline explainer.

For the first N live features of a source with dashboards (default: the demo SAE 15-res-demo), in one run:

(a) token consistency: among features whose top activations peak on the same token in >= 50% of the
    top examples, the share whose explanation names that token (target >= 80% for the new explainer);
(b) embedding score on HELD-OUT examples: all-MiniLM-L6-v2 ROC-AUC of explanation/text similarity,
    activating windows of examples no explainer saw (odd ranks) against windows of corpus text where
    the feature is exactly zero (target: new mean >= old mean + 0.05, win rate >= 65%);
(c) detection and fuzzing (delphi) with an OpenAI-compatible endpoint when NP_BENCH_LLM_BASE_URL (and
    NP_BENCH_LLM_MODEL, NP_BENCH_LLM_API_KEY) are set: reported, not gated.

Then 20 random features side by side. Both explainers see the same (even-rank) examples.
"old" is `np_max-act-logits` with the local SmolLM2 (the explainer the demo used before this change),
"new" is `np_offline` (token analysis + constrained SmolLM2, best candidate kept).

    DATABASE_URL=postgres://.../scratch .venv/bin/python bench/explainer_quality_bench.py [--features 300]

Needs dashboards for the source in that database (manage.py generate_dashboards ... --inline).
Old explanations are cached in --cache (JSON) because SmolLM2 generation is the slow part.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def names(text: str, token: str) -> bool:
    """Whether `text` names `token` as a word. A short or function word ("a", "of", "the") must be quoted:
    otherwise any phrase with "a" in it ("after a comma") would count as naming the token "a"."""
    from autointerp.phrasing import token_class

    t = token.strip().lower()
    if not t:
        return "line" in text.lower() or "space" in text.lower()
    if len(t) <= 2 or token_class(t) in ("pronouns", "determiners", "prepositions", "conjunctions",
                                         "auxiliaries"):
        return f'"{t}"' in text.lower() or f"'{t}'" in text.lower()
    if re.fullmatch(r"\w+", t):
        return re.search(rf"(?<![a-z0-9]){re.escape(t)}(?![a-z0-9])", text.lower()) is not None
    return t in text.lower()


def dominant_top_token(top: list[Any]) -> tuple[str, float] | None:
    from collections import Counter

    import numpy as np

    counts: Counter[str] = Counter()
    for ex in top:
        counts[ex.tokens[int(np.argmax(ex.values))].strip().lower()] += 1
    if not counts:
        return None
    token, n = counts.most_common(1)[0]
    return token, n / len(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--source", default="15-res-demo")
    parser.add_argument("--features", type=int, default=300)
    parser.add_argument("--cache", default="test-artifacts/explainer_bench_old.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=20)
    parser.add_argument("--use-llm", default="auto", choices=["auto", "always", "never"])
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    import django

    django.setup()
    import torch

    from autointerp.embedders import load_minilm
    from autointerp.explainers import ExplainerSettings, FeatureEvidence, explain_np_max_act_logits
    from autointerp.llm import LOCAL_MODEL, LocalChat, UnparseableOutput
    from autointerp.offline import (
        explain_offline,
        feature_examples,
        held_out_scorer,
        split_examples,
    )
    from features.models import Feature

    torch.set_num_threads(2)
    features = list(
        Feature.objects.filter(source__model_id=args.model, source__name=args.source, is_dead=False).order_by(
            "index"
        )[: args.features]
    )
    if not features:
        sys.exit(f"no live features for {args.model}/{args.source}: generate its dashboards first")
    cache_path = Path(args.cache)
    # index -> {"text": old explanation, "seconds": time it took}; a plain string is an older cache entry
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    cache = {k: v if isinstance(v, dict) else {"text": v, "seconds": None} for k, v in cache.items()}
    backend = LocalChat()
    minilm = load_minilm()
    old_settings = ExplainerSettings.for_model("np_max-act-logits", LOCAL_MODEL)
    llm = None
    if os.environ.get("NP_BENCH_LLM_BASE_URL"):
        from autointerp.llm import OpenAIChat, ProviderConfig

        llm = OpenAIChat(
            ProviderConfig(
                base_url=os.environ["NP_BENCH_LLM_BASE_URL"],
                api_key=os.environ.get("NP_BENCH_LLM_API_KEY", "none"),
                model=os.environ.get("NP_BENCH_LLM_MODEL", "gpt-4o-mini"),
            )
        )
    rows: list[dict[str, Any]] = []
    new_s = 0.0
    old_fresh = skipped = 0
    for n, feature in enumerate(features):
        top, quantile = feature_examples(feature)
        split = split_examples(top, quantile, top_logits=tuple(feature.pos_str or ())[:10])
        if not split.seen or not split.held_out:
            skipped += 1
            continue
        evidence = FeatureEvidence(
            feature_id=feature.pk,
            examples=tuple(top[0::2]),
            quantile=tuple(quantile[0::2]),
            top_logits=split.top_logits,
        )
        key = str(feature.index)
        if key not in cache:
            started = time.perf_counter()
            try:
                text = explain_np_max_act_logits(evidence, backend, old_settings).text
            except UnparseableOutput:
                text = ""
            cache[key] = {"text": text, "seconds": time.perf_counter() - started}
            old_fresh += 1
            if n % 10 == 0:
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                cache_path.write_text(json.dumps(cache))
        started = time.perf_counter()
        new = explain_offline(split, backend=backend, use_llm=args.use_llm, model=minilm)
        new_s += time.perf_counter() - started
        try:
            scorer = held_out_scorer(split, model=minilm)
        except ValueError:
            skipped += 1
            continue
        old_text = cache[key]["text"] or "(no explanation)"
        old_score, new_score = scorer.scores([old_text, new.text])
        row = {
            "index": feature.index,
            "old": cache[key]["text"],
            "old_seconds": cache[key]["seconds"],
            "new": new.text,
            "method": new.method,
            "old_score": old_score,
            "new_score": new_score,
            "dominant": dominant_top_token(top),
            "top_tokens": [t for t, _ in new.analysis["top_tokens"][:3]],
        }
        if llm is not None:
            from autointerp.scorers import DETECTION, FUZZ, ScoringFailed, ScoringSet, score_classifier

            data = ScoringSet(
                activating=split.held_out[:10],
                non_activating=tuple(
                    __import__("autointerp.explainers", fromlist=["Example"]).Example((t,), (0.0,))
                    for t in scorer.neg_texts[:10]
                ),
            )
            for kind in (DETECTION, FUZZ):
                for who in ("old", "new"):
                    try:
                        row[f"{who}_{kind}"] = score_classifier(kind, row[who] or "-", data, llm).value
                    except ScoringFailed:
                        row[f"{who}_{kind}"] = None
        rows.append(row)
        print(
            f"[{len(rows)}/{len(features)}] #{feature.index}: new {new.text!r} ({new_score:.2f}) | "
            f"old {cache[key]['text'][:50]!r} ({old_score:.2f})",
            file=sys.stderr,
            flush=True,
        )
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache_path.write_text(json.dumps(cache))
    print(f"old explanations: {old_fresh} generated in this run, the rest read from {cache_path}",
          file=sys.stderr)
    report(rows, skipped, new_s, args, llm)


def report(rows: list[dict[str, Any]], skipped: int, new_s: float, args: Any, llm: Any) -> None:
    n = len(rows)
    consistent = [r for r in rows if r["dominant"] and r["dominant"][1] >= 0.5]

    def share(who: str) -> tuple[int, float]:
        hits = sum(names(r[who], r["dominant"][0]) for r in consistent)
        return hits, hits / max(1, len(consistent))

    old_hits, old_share = share("old")
    new_hits, new_share = share("new")
    old_mean = statistics.mean(r["old_score"] for r in rows)
    new_mean = statistics.mean(r["new_score"] for r in rows)
    wins = sum(r["new_score"] > r["old_score"] for r in rows)
    ties = sum(r["new_score"] == r["old_score"] for r in rows)
    win_rate = (wins + 0.5 * ties) / n
    methods: dict[str, int] = {}
    for r in rows:
        methods[r["method"]] = methods.get(r["method"], 0) + 1
    print(
        f"\nExplainer quality: {args.model}/{args.source}, first {args.features} live features "
        f"({n} scored, {skipped} without held-out examples)\n"
    )
    print("| metric | old (LLM only) | new (analysis + LLM) | target |")
    print("|---|---|---|---|")
    print(
        f"| token consistency ({len(consistent)} features peak on one token in >= 50% of top examples) "
        f"| {old_hits}/{len(consistent)} = {old_share:.0%} | {new_hits}/{len(consistent)} = {new_share:.0%} "
        f"| new >= 80%: {'met' if new_share >= 0.8 else 'NOT met'} |"
    )
    print(
        f"| held-out embedding AUROC, mean | {old_mean:.3f} | {new_mean:.3f} | new >= old + 0.05: "
        f"{'met' if new_mean >= old_mean + 0.05 else 'NOT met'} ({new_mean - old_mean:+.3f}) |"
    )
    print(
        f"| held-out embedding AUROC, median | {statistics.median(r['old_score'] for r in rows):.3f} | "
        f"{statistics.median(r['new_score'] for r in rows):.3f} | |"
    )
    print(
        f"| new beats old (win rate, ties half) | | {win_rate:.0%} ({wins} wins, {ties} ties of {n}) | "
        f">= 65%: {'met' if win_rate >= 0.65 else 'NOT met'} |"
    )
    old_times = [r["old_seconds"] for r in rows if r["old_seconds"] is not None]
    print(
        f"| explainer time per feature (CPU; old: when generated) | "
        f"{statistics.mean(old_times) if old_times else float('nan'):.2f} s (n={len(old_times)}) "
        f"| {new_s / max(1, n):.2f} s | |"
    )
    print(
        f"| new explanations by method | | {', '.join(f'{k}: {v}' for k, v in sorted(methods.items()))} | |"
    )
    if llm is not None:
        from autointerp.scorers import DETECTION, FUZZ

        for kind in (DETECTION, FUZZ):
            vals = {
                who: [r[f"{who}_{kind}"] for r in rows if r.get(f"{who}_{kind}") is not None]
                for who in ("old", "new")
            }
            print(
                f"| {kind} ({llm.model_name}), mean balanced accuracy | "
                f"{statistics.mean(vals['old']) if vals['old'] else float('nan'):.3f} "
                f"(n={len(vals['old'])}) | "
                f"{statistics.mean(vals['new']) if vals['new'] else float('nan'):.3f} (n={len(vals['new'])}) "
                f"| reported |"
            )
    else:
        print("| detection / fuzzing | not run: no LLM endpoint configured (NP_BENCH_LLM_BASE_URL) | | | |")
    sample = random.Random(args.seed).sample(rows, min(args.show, n))
    print(f"\n{len(sample)} random features (seed {args.seed}), held-out embedding AUROC in brackets\n")
    print("| # | top tokens | old explanation | new explanation |")
    print("|---|---|---|---|")
    for r in sorted(sample, key=lambda r: r["index"]):
        tops = ", ".join(f"`{t}`" for t in r["top_tokens"]).replace("|", "\\|")
        old = (r["old"] or "(failed)").replace("|", "\\|")[:70]
        new = r["new"].replace("|", "\\|")
        print(f"| {r['index']} | {tops} | {old} ({r['old_score']:.2f}) | {new} ({r['new_score']:.2f}) |")


if __name__ == "__main__":
    main()
