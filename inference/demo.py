"""The offline demo source: SmolLM2-135M-Instruct + the project's demo SAE (15-res-demo).

`register_demo_source` writes the catalog rows (Model, SourceRelease, SourceSet, Source, Eval) from
the SAE folder's cfg.json and training.json. Safe to run again: rows are upserted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from features.models import Eval, Model, Source, SourceRelease, SourceSet

DEMO_MODEL_ID = "smollm2-135m-instruct"
DEMO_SET = "res-demo"
DEMO_SOURCE = "15-res-demo"
DEMO_RELEASE = "np-python-demo"
DEMO_SAE_DIR = Path(settings.BASE_DIR) / "inference_worker" / "demo" / DEMO_SOURCE
DEMO_CONFIG = Path(settings.BASE_DIR) / "inference_worker" / "configs" / f"{DEMO_MODEL_ID}.demo.env"


def register_demo_source(*, sae_dir: Path = DEMO_SAE_DIR) -> Source:
    cfg: dict[str, Any] = json.loads((sae_dir / "cfg.json").read_text())
    training_file = sae_dir / "training.json"
    training: dict[str, Any] = json.loads(training_file.read_text()) if training_file.exists() else {}
    hook = cfg["metadata"]["hook_name"]
    with transaction.atomic():
        model, _ = Model.objects.update_or_create(id=DEMO_MODEL_ID, defaults={
            "display_name": "SmolLM2 135M Instruct", "display_name_short": "SmolLM2-135M",
            "owner": "HuggingFaceTB", "website": "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
            "layers": 30, "neurons_per_layer": 1536, "dimension": cfg["d_in"],
            "hf_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "instruct": True,
            "default_source_set_name": DEMO_SET, "default_source_name": DEMO_SOURCE})
        release, _ = SourceRelease.objects.update_or_create(name=DEMO_RELEASE, defaults={
            "description": "SAEs trained by this project, offline, on the Brown corpus.",
            "description_short": "Offline demo SAEs", "creator_name": "Neuronpedia (Python)",
            "featured": True, "default_source_set_name": DEMO_SET, "default_source_name": DEMO_SOURCE})
        source_set, _ = SourceSet.objects.update_or_create(model=model, name=DEMO_SET, defaults={
            "release": release, "type": "sae", "creator_name": "Neuronpedia (Python)",
            "description": f"TopK SAE (k={cfg.get('k')}, {cfg['d_sae']} features) on the residual "
                           "stream, trained offline on the Brown corpus"})
        source, _ = Source.objects.update_or_create(model=model, name=DEMO_SOURCE, defaults={
            "source_set": source_set, "layer": 15, "hook_name": hook, "num_features": cfg["d_sae"],
            "saelens_config": cfg, "local_path": str(sae_dir),
            "dataset": cfg["metadata"].get("dataset_path", ""),
            "num_tokens_in_prompt": cfg["metadata"].get("context_size")})
        if training:
            Eval.objects.update_or_create(source=source, type="training", defaults={"output": {
                key: training[key] for key in ("explained_variance", "l0", "dead_fraction",
                                               "n_tokens", "eval_tokens", "k", "d_sae", "lr")
                if key in training}})
    return source


# --- the demo transcoder set (plt-demo), trained by the TRAIN_TRANSCODERS job ---------------------------

DEMO_TRANSCODER_SET = "plt-demo"


def register_transcoder_set(*, folder: Path) -> list[Source]:
    """Catalog rows for a trained transcoder set (what inference_worker.training_transcoders writes in
    ``folder``: ``training.json`` + ``saelens/{L}-{set}/cfg.json``): a SourceSet of type ``transcoder``
    and one Source per layer (hook = the transcoder's input hook; ``saelens_config`` keeps the output
    hook), plus each layer's training report as a ``training`` Eval. Safe to run again: rows are
    upserted, so the job and `bootstrap_demo` may both call it."""
    training: dict[str, Any] = json.loads((folder / "training.json").read_text())
    cfg, result = training["config"], training["result"]
    model_id, set_name = cfg["model_id"], cfg["set_name"]
    per_layer = {row["layer"]: row for row in result["layers"]}
    folders = sorted((folder / "saelens").glob(f"*-{set_name}/cfg.json"),
                     key=lambda p: int(p.parent.name.split("-", 1)[0]))
    if not folders:
        raise ValueError(f"no trained transcoders in {folder}")
    first = json.loads(folders[0].read_text())
    description = (f"Per-layer transcoders (JumpReLU, {cfg['d_transcoder']} features, k={cfg['k']}): "
                   f"MLP input -> MLP output of every layer, trained by this project on {cfg['n_tokens']:,} "
                   f"tokens of the {cfg['corpus']} corpus; used for attribution graphs")
    with transaction.atomic():
        model, _ = Model.objects.get_or_create(id=model_id, defaults={
            "layers": len(folders), "dimension": first["d_in"]})
        source_set, _ = SourceSet.objects.update_or_create(model=model, name=set_name, defaults={
            "type": "transcoder", "creator_name": "Neuronpedia (Python)", "description": description,
            "show_umap": False})
        sources = []
        for path in folders:
            sae_cfg = json.loads(path.read_text())
            meta = sae_cfg["metadata"]
            layer = int(path.parent.name.split("-", 1)[0])
            source, _ = Source.objects.update_or_create(model=model, name=path.parent.name, defaults={
                "source_set": source_set, "layer": layer, "hook_name": meta["hook_name"],
                "num_features": sae_cfg["d_sae"], "saelens_config": sae_cfg, "local_path": str(path.parent),
                "dataset": meta.get("dataset_path", ""), "num_tokens_in_prompt": meta.get("context_size")})
            if layer in per_layer:
                Eval.objects.update_or_create(source=source, type="training", defaults={"output": {
                    **per_layer[layer], "version": result.get("version"), "k": cfg["k"],
                    "d_transcoder": cfg["d_transcoder"], "n_tokens": cfg["n_tokens"]}})
            sources.append(source)
    return sources
