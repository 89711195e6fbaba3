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
