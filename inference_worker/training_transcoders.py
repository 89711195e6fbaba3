"""Train a per-layer transcoder (PLT) set for every layer of a model in one streaming pass.

One forward per batch collects, for all layers at once, the MLP input (``blocks.L.ln2.hook_normalized``,
i.e. what the MLP reads) and the MLP output (``blocks.L.hook_mlp_out``); each layer's transcoder then
takes one optimiser step on that batch. Nothing is stored on disk but a checkpoint, so memory stays
flat however many tokens are used.

Transcoders are BatchTopK during training (the ``k × tokens`` largest pre-activations of the batch
survive, a per-layer threshold is tracked as the running mean of the smallest survivor) and are saved
as JumpReLU transcoders with that threshold: the form SAE-Lens (``JumpReLUTranscoder``) and
circuit-tracer (``load_relu_transcoder`` with ``activation_function.threshold``) both load. Decoding
is sparse (gathered decoder rows), so a step costs two ``tokens × d_model × width`` products per
layer. Dead latents get an AuxK loss (OpenAI's TopK SAE recipe). Inputs and outputs are scaled to
unit mean square per layer for training and the scales are folded back into the saved weights.

Positions ``< skip_positions`` of every context are not trained on: SmolLM2's attention sink
(residual norm ~24,000 at position 0) would dominate the loss (NOTES.md).

Pure torch (no Django): the Django job wrapper is ``inference_worker.transcoder_tasks``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from inference_worker.transcoder_config import (  # noqa: F401 - re-exported
    TranscoderTrainConfig,
    current_dir,
    default_root,
    is_complete,
    set_root,
    version_dir,
)

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

    from inference_worker.saes import FwdHooks

Progress = Callable[[int, int, str], None]  # (done, total, message)

INPUT_HOOK = "ln2.hook_normalized"  # x / rms(x) before ln2's weight (circuit-tracer uses it as-is)
OUTPUT_HOOK = "hook_mlp_out"  # = the MLP's output (circuit-tracer: "mlp.hook_out")


def _quiet(_done: int, _total: int, _msg: str) -> None:
    return None


# ---------------------------------------------------------------- data


def token_batches(model: HookedTransformer, cfg: TranscoderTrainConfig,
                  texts: list[str] | None = None) -> tuple[Tensor, Tensor]:
    """(train [n_batches, batch_seqs, ctx], eval [n_eval_seqs, ctx]) token ids, deterministic."""
    from inference_worker.demo_sae import corpus_texts, token_stream  # noqa: PLC0415

    if texts is None:
        texts = corpus_texts(cfg.corpus, progress=lambda _m: None)
    per_step = cfg.context_size * cfg.batch_seqs
    n_train = cfg.n_batches * per_step
    n_eval = cfg.eval_tokens // cfg.context_size * cfg.context_size
    stream = token_stream(model, texts, n_train + n_eval)
    if len(stream) < n_train + n_eval:
        raise ValueError(f"corpus has only {len(stream):,} tokens; need {n_train + n_eval:,}")
    train = stream[:n_train].view(cfg.n_batches, cfg.batch_seqs, cfg.context_size)
    held_out = stream[n_train:n_train + n_eval].view(-1, cfg.context_size)
    return train, held_out


def hook_names(n_layers: int) -> tuple[list[str], list[str]]:
    return ([f"blocks.{layer}.{INPUT_HOOK}" for layer in range(n_layers)],
            [f"blocks.{layer}.{OUTPUT_HOOK}" for layer in range(n_layers)])


@torch.inference_mode()
def mlp_io(model: HookedTransformer, tokens: Tensor, skip: int) -> tuple[Tensor, Tensor]:
    """MLP inputs and outputs of all layers, ``[n_layers, n_tokens, d]`` fp32, positions >= skip."""
    ins, outs = hook_names(model.cfg.n_layers)
    wanted = set(ins) | set(outs)
    _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=lambda n: n in wanted,
                                    return_cache_object=False, stop_at_layer=model.cfg.n_layers)
    d = model.cfg.d_model
    x = torch.stack([cache[h][:, skip:].reshape(-1, d) for h in ins]).float()
    y = torch.stack([cache[h][:, skip:].reshape(-1, d) for h in outs]).float()
    return x, y


# ---------------------------------------------------------------- the set being trained


class TranscoderStack(torch.nn.Module):
    """All layers' transcoders; trained in normalised units (x/sx, y/sy)."""

    # buffers (register_buffer below), declared for the type checker
    sx: Tensor
    sy: Tensor
    threshold: Tensor
    since_fired: Tensor
    initialised: Tensor

    def __init__(self, n_layers: int, d_model: int, d_transcoder: int, seed: int = 0,
                 device: str = "cpu") -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w_dec = torch.randn(n_layers, d_transcoder, d_model, generator=g)
        w_dec = (w_dec / w_dec.norm(dim=-1, keepdim=True)).to(device)
        # one Parameter per layer: indexing a stacked Parameter would make every layer's backward
        # fill and accumulate a gradient the size of all layers
        P = torch.nn.Parameter  # noqa: N806
        self.W_dec = torch.nn.ParameterList([P(w_dec[i].clone()) for i in range(n_layers)])
        self.W_enc = torch.nn.ParameterList([P(w_dec[i].T.clone()) for i in range(n_layers)])
        self.b_enc = torch.nn.ParameterList([P(torch.zeros(d_transcoder, device=device))
                                             for _ in range(n_layers)])
        self.b_dec = torch.nn.ParameterList([P(torch.zeros(d_model, device=device))
                                             for _ in range(n_layers)])
        self.register_buffer("sx", torch.ones(n_layers, device=device))
        self.register_buffer("sy", torch.ones(n_layers, device=device))
        self.register_buffer("threshold", torch.zeros(n_layers, device=device))
        self.register_buffer("since_fired", torch.zeros(n_layers, d_transcoder, device=device))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool, device=device))

    @property
    def n_layers(self) -> int:
        return len(self.W_dec)

    @property
    def d_transcoder(self) -> int:
        return int(self.W_dec[0].shape[0])

    @torch.no_grad()
    def initialise(self, x: Tensor, y: Tensor) -> None:
        """Scales from the first batch: E||x/sx||^2 = E||y/sy||^2 = d_model; b_dec = mean(y/sy)."""
        d = x.shape[-1]
        self.sx.copy_((x.pow(2).sum(-1).mean(-1) / d).sqrt().clamp_min(1e-6))
        self.sy.copy_((y.pow(2).sum(-1).mean(-1) / d).sqrt().clamp_min(1e-6))
        for layer, mean in enumerate((y / self.sy[:, None, None]).mean(1)):
            self.b_dec[layer].copy_(mean)
        self.initialised.fill_(True)

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        for w in self.W_dec:
            w.div_(w.norm(dim=-1, keepdim=True).clamp_min(1e-8))

    def layer_loss(self, layer: int, x: Tensor, y: Tensor, k: int, aux_k: int, aux_coef: float,
                   dead_tokens: int) -> tuple[Tensor, dict[str, float]]:
        """BatchTopK transcoder loss of one layer on normalised ``x``/``y`` ``[n, d]``.

        Dense masked decode: on CPU two more matmuls beat gathering decoder rows (whose backward is
        a slow index_put)."""
        n = x.shape[0]
        pre = torch.addmm(self.b_enc[layer], x, self.W_enc[layer]).float()  # [n, d_t]
        act = pre.relu()
        with torch.no_grad():
            kth = act.flatten().topk(n * k, sorted=False).values.min()
            keep = (act >= kth) & (act > 0)
        acts = act * keep
        recon = torch.addmm(self.b_dec[layer], acts.to(self.W_dec[layer].dtype), self.W_dec[layer]).float()
        err = y - recon
        var = (y - y.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-8)
        loss = err.pow(2).sum(-1).mean() / var
        with torch.no_grad():
            if kth > 0:
                self.threshold[layer].lerp_(kth, 0.05 if self.threshold[layer] > 0 else 1.0)
            fired = keep.any(0)
            self.since_fired[layer] += n
            self.since_fired[layer][fired] = 0
            dead = self.since_fired[layer] > dead_tokens
        stats = {"nmse": float(loss.detach()), "dead": float(dead.float().mean())}
        n_dead = int(dead.sum())
        if n_dead and aux_coef > 0:
            aux_act = act * dead
            with torch.no_grad():
                kk = min(n * aux_k, int((aux_act > 0).sum()))
                a_kth = aux_act.flatten().topk(kk, sorted=False).values.min() if kk else None
            if a_kth is not None and a_kth > 0:
                aux_acts = aux_act * (aux_act >= a_kth)
                aux_recon = (aux_acts.to(self.W_dec[layer].dtype) @ self.W_dec[layer]).float()
                e = err.detach()
                aux = (e - aux_recon).pow(2).sum(-1).mean() / e.pow(2).sum(-1).mean().clamp_min(1e-8)
                loss = loss + aux_coef * torch.nan_to_num(aux, nan=0.0)
        return loss, stats

    @torch.no_grad()
    def folded(self, layer: int) -> dict[str, Tensor]:
        """Weights of one layer in model units: JumpReLU(x @ W_enc + b_enc) @ W_dec + b_dec."""
        sx, sy = self.sx[layer], self.sy[layer]
        return {
            "W_enc": (self.W_enc[layer] / sx).float().cpu().contiguous(),  # [d_in, d_t]
            "b_enc": self.b_enc[layer].float().cpu().contiguous(),
            "W_dec": (self.W_dec[layer] * sy).float().cpu().contiguous(),  # [d_t, d_out]
            "b_dec": (self.b_dec[layer] * sy).float().cpu().contiguous(),
            "threshold": self.threshold[layer].expand(self.d_transcoder).float().cpu().contiguous(),
        }


def jumprelu_apply(w: dict[str, Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """(feature activations, reconstruction) of saved-form weights on ``x`` ``[..., d_in]``."""
    pre = x.float() @ w["W_enc"] + w["b_enc"]
    acts = pre.relu() * (pre > w["threshold"])
    return acts, acts @ w["W_dec"] + w["b_dec"]


# ---------------------------------------------------------------- training loop


@dataclass
class TrainState:
    step: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


def _checkpoint_path(out: Path) -> Path:
    return out / "checkpoint.pt"


def _save_checkpoint(out: Path, stack: TranscoderStack, opt: torch.optim.Optimizer,
                     state: TrainState, cfg: TranscoderTrainConfig) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "checkpoint.pt.tmp"
    torch.save({"version": cfg.version, "stack": stack.state_dict(), "opt": opt.state_dict(),
                "state": asdict(state)}, tmp)
    tmp.replace(_checkpoint_path(out))


def _load_checkpoint(out: Path, stack: TranscoderStack, opt: torch.optim.Optimizer,
                     cfg: TranscoderTrainConfig) -> TrainState | None:
    path = _checkpoint_path(out)
    if not path.exists():
        return None
    data = torch.load(path, map_location=stack.sx.device, weights_only=False)
    if data.get("version") != cfg.version:
        return None
    stack.load_state_dict(data["stack"])
    opt.load_state_dict(data["opt"])
    return TrainState(**data["state"])


@dataclass(frozen=True)
class TrainResult:
    path: str
    version: str
    layers: list[dict[str, float]]
    replacement: dict[str, float]
    seconds: dict[str, float]
    resumed_from_step: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _adam(stack: TranscoderStack, lr: float) -> torch.optim.Optimizer:
    try:  # the fused kernel is several times faster on CPU when this torch build has it
        return torch.optim.Adam(stack.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(stack.parameters(), lr=lr, foreach=True)


def _autocast(device: str, enabled: bool | None) -> Any:
    cuda = device.startswith("cuda")
    return torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16,
                          enabled=cuda if enabled is None else enabled)


class CpuThreads:
    """Torch's CPU threads while training: as many as the cores others leave free (1-min load average,
    re-read every ``update``), at most the count torch started with, restored on exit. On a loaded box
    two threads that wait on each other at every OpenMP barrier ran a step ~10x slower than one thread
    (measured: 20 s vs 2 s per 30-layer step, load 6 on 2 cores)."""

    def __init__(self, device: str) -> None:
        self.enabled = not device.startswith("cuda") and hasattr(os, "getloadavg")
        self.initial = torch.get_num_threads()

    def __enter__(self) -> CpuThreads:
        self.update()
        return self

    def update(self) -> int:
        if self.enabled:
            mine = torch.get_num_threads()
            others = max(0.0, os.getloadavg()[0] - mine)
            free = int((os.cpu_count() or 1) - others + 0.5)
            torch.set_num_threads(max(1, min(self.initial, free)))
        return torch.get_num_threads()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            torch.set_num_threads(self.initial)


def train_transcoders(model: HookedTransformer, cfg: TranscoderTrainConfig, out: Path,
                      texts: list[str] | None = None, progress: Progress = _quiet,
                      should_stop: Callable[[], bool] = lambda: False) -> TrainResult | None:
    """Train (or resume) the set into ``out``; returns None when ``should_stop`` asked to stop (the
    checkpoint is then saved), else the evaluated result after writing the set (see ``save_set``).
    Already complete → loads the stored result without training."""
    if is_complete(out):
        return TrainResult(**json.loads((out / "training.json").read_text())["result"])
    with CpuThreads(str(model.cfg.device)) as threads:
        return _train(model, cfg, out, texts, progress, should_stop, threads)


def _train(model: HookedTransformer, cfg: TranscoderTrainConfig, out: Path, texts: list[str] | None,
           progress: Progress, should_stop: Callable[[], bool], threads: CpuThreads
           ) -> TrainResult | None:
    t_start = time.perf_counter()
    device = str(model.cfg.device)
    torch.manual_seed(cfg.seed)
    train_tokens, eval_tokens = token_batches(model, cfg, texts)
    n_layers, d_model = model.cfg.n_layers, model.cfg.d_model
    stack = TranscoderStack(n_layers, d_model, cfg.d_transcoder, cfg.seed, device)
    opt = _adam(stack, cfg.lr)
    state = _load_checkpoint(out, stack, opt, cfg) or TrainState()
    resumed = state.step
    total = cfg.n_steps
    progress(state.step, total, f"training {n_layers} transcoders (width {cfg.d_transcoder}, "
             f"k {cfg.k}) on {cfg.n_tokens:,} tokens" + (f", resuming at step {resumed}" if resumed
                                                         else ""))
    t0, last = time.perf_counter(), 0.0
    fwd_s = 0.0
    lr_min = cfg.lr / 10
    batch_index, x, y = -1, torch.empty(0), torch.empty(0)
    while state.step < total:
        if should_stop():
            _save_checkpoint(out, stack, opt, state, cfg)
            return None
        if state.step // cfg.steps_per_batch != batch_index:  # one forward feeds steps_per_batch steps
            batch_index = state.step // cfg.steps_per_batch
            tf = time.perf_counter()
            x, y = mlp_io(model, train_tokens[batch_index], cfg.skip_positions)
            fwd_s += time.perf_counter() - tf
            if not bool(stack.initialised):
                stack.initialise(x, y)
            x = x / stack.sx[:, None, None]
            y = y / stack.sy[:, None, None]
        # cosine decay to lr/10 over the last 80% of steps, after a 5% warm-up
        frac = state.step / max(total - 1, 1)
        lr = cfg.lr * min(1.0, (state.step + 1) / max(1, int(0.05 * total)))
        if frac > 0.2:
            lr = lr_min + (cfg.lr - lr_min) * 0.5 * (1 + math.cos(math.pi * (frac - 0.2) / 0.8))
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        nmse, dead = [], []
        for layer in range(n_layers):
            with _autocast(device, cfg.autocast):
                loss, st = stack.layer_loss(layer, x[layer], y[layer], cfg.k, cfg.aux_k,
                                            cfg.aux_coef, cfg.dead_tokens)
            loss.backward()
            nmse.append(st["nmse"])
            dead.append(st["dead"])
        opt.step()
        stack.normalise_decoder()
        state.step += 1
        now = time.perf_counter()
        if state.step % 10 == 0 or state.step == total:
            state.history.append({"step": state.step, "nmse": sum(nmse) / n_layers,
                                  "dead": sum(dead) / n_layers, "lr": lr})
        if state.step % cfg.checkpoint_every == 0 and state.step < total:
            _save_checkpoint(out, stack, opt, state, cfg)
            threads.update()
        if now - last >= 2.0 or state.step == total:
            last = now
            rate = (state.step - resumed) * cfg.batch_seqs * cfg.context_size / (now - t0)
            progress(state.step, total, f"step {state.step}/{total}: mean NMSE "
                     f"{sum(nmse) / n_layers:.3f}, dead {sum(dead) / n_layers:.1%}, "
                     f"{rate:,.0f} tokens/s, {torch.get_num_threads()} thread(s)")
    state.seconds += time.perf_counter() - t0
    _save_checkpoint(out, stack, opt, state, cfg)
    progress(total, total, "evaluating on held-out text")
    te = time.perf_counter()
    layers = [stack.folded(layer) for layer in range(n_layers)]
    layer_stats, replacement = evaluate(model, layers, eval_tokens, cfg.skip_positions,
                                        splice_tokens=cfg.splice_eval_tokens)
    eval_s = time.perf_counter() - te
    result = TrainResult(
        path=str(out), version=cfg.version, layers=layer_stats, replacement=replacement,
        seconds={"train": round(state.seconds, 1), "forward": round(fwd_s, 1),
                 "eval": round(eval_s, 1), "total_this_run": round(time.perf_counter() - t_start, 1)},
        resumed_from_step=resumed)
    save_set(out, layers, cfg, model, result, state.history)
    return result


# ---------------------------------------------------------------- evaluation


@torch.inference_mode()
def evaluate(model: HookedTransformer, layers: list[dict[str, Tensor]], tokens: Tensor,
             skip: int, batch_seqs: int = 8, splice_tokens: int = 1024
             ) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Per layer: explained variance of the MLP output, L0, dead fraction (no firing on the eval
    tokens), and next-token agreement / KL / CE when only that layer's MLP is replaced (first
    ``splice_tokens`` tokens); plus the same with every MLP replaced at once (all eval tokens)."""
    device = str(model.cfg.device)
    n_layers = len(layers)
    w_dev = [{k: v.to(device) for k, v in w.items()} for w in layers]
    sse = torch.zeros(n_layers, dtype=torch.float64)
    sst = torch.zeros(n_layers, dtype=torch.float64)
    l0 = torch.zeros(n_layers, dtype=torch.float64)
    ysum = torch.zeros(n_layers, layers[0]["W_dec"].shape[1], dtype=torch.float64)
    fired = torch.zeros(n_layers, layers[0]["W_dec"].shape[0], dtype=torch.bool)
    n_tok = 0
    for start in range(0, len(tokens), batch_seqs):
        x, y = mlp_io(model, tokens[start:start + batch_seqs], skip)
        for layer, w in enumerate(w_dev):
            acts, recon = jumprelu_apply(w, x[layer])
            sse[layer] += float((y[layer] - recon).double().pow(2).sum())
            l0[layer] += float((acts > 0).sum())
            fired[layer] |= (acts > 0).any(0).cpu()
        ysum += y.double().sum(1).cpu()
        sst += y.double().pow(2).sum((1, 2)).cpu()
        n_tok += x.shape[1]
    sst = sst - ysum.pow(2).sum(-1) / n_tok
    ev = 1 - sse / sst.clamp_min(1e-12)
    splice_seqs = max(1, splice_tokens // tokens.shape[1])
    few = tokens[:splice_seqs]
    real_few = _real_logprobs(model, few, skip, batch_seqs)
    per_layer = [_splice_metrics(model, few, real_few, {layer: w_dev[layer]}, skip, batch_seqs)
                 for layer in range(n_layers)]
    everything = _splice_metrics(model, tokens, _real_logprobs(model, tokens, skip, batch_seqs),
                                 dict(enumerate(w_dev)), skip, batch_seqs)
    stats = []
    for layer in range(n_layers):
        stats.append({"layer": layer, "explained_variance": round(float(ev[layer]), 4),
                      "l0": round(float(l0[layer] / n_tok), 2),
                      "dead_fraction": round(float((~fired[layer]).float().mean()), 4),
                      **{f"splice_{k}": v for k, v in per_layer[layer].items()}})
    return stats, {**everything, "eval_tokens": int(n_tok),
                   "splice_eval_tokens": int(few.shape[0] * (few.shape[1] - skip - 1))}


def _real_logprobs(model: HookedTransformer, tokens: Tensor, skip: int, batch_seqs: int
                   ) -> list[Tensor]:
    return [model(tokens[s:s + batch_seqs].to(model.cfg.device)).float()[:, skip:-1]
            .log_softmax(-1) for s in range(0, len(tokens), batch_seqs)]


@torch.inference_mode()
def _splice_metrics(model: HookedTransformer, tokens: Tensor, real: list[Tensor],
                    replace: dict[int, dict[str, Tensor]], skip: int, batch_seqs: int
                    ) -> dict[str, float]:
    """Top-1 agreement, mean KL(real || replaced) and CE of both, on positions >= skip."""
    agree = kl = ce_real = ce_rep = 0.0
    n = 0
    store: dict[int, Tensor] = {}
    hooks: FwdHooks = []
    for layer, w in replace.items():
        def keep(act: Tensor, hook: Any, layer: int = layer) -> None:
            store[layer] = act

        def swap(act: Tensor, hook: Any, layer: int = layer, w: dict[str, Tensor] = w) -> Tensor:
            out = act.clone()
            out[:, skip:] = jumprelu_apply(w, store[layer][:, skip:])[1].to(act.dtype)
            return out
        hooks += [(f"blocks.{layer}.{INPUT_HOOK}", keep), (f"blocks.{layer}.{OUTPUT_HOOK}", swap)]
    for i, start in enumerate(range(0, len(tokens), batch_seqs)):
        batch = tokens[start:start + batch_seqs].to(model.cfg.device)
        lp_real = real[i]
        lp_rep = model.run_with_hooks(batch, fwd_hooks=hooks).float()[:, skip:-1].log_softmax(-1)
        target = batch[:, skip + 1:]
        agree += float((lp_real.argmax(-1) == lp_rep.argmax(-1)).sum())
        kl += float((lp_real.exp() * (lp_real - lp_rep)).sum(-1).sum())
        ce_real -= float(lp_real.gather(-1, target[..., None]).sum())
        ce_rep -= float(lp_rep.gather(-1, target[..., None]).sum())
        n += target.numel()
    return {"top1_agreement": round(agree / n, 4), "kl": round(kl / n, 4),
            "ce_real": round(ce_real / n, 4), "ce_replaced": round(ce_rep / n, 4)}


# ---------------------------------------------------------------- saving


def save_set(out: Path, layers: list[dict[str, Tensor]], cfg: TranscoderTrainConfig,
             model: HookedTransformer, result: TrainResult, history: list[dict[str, float]]) -> None:
    """Write ``saelens/{L}-{set}/`` (SAE-Lens JumpReLUTranscoder folders), ``circuit_tracer/``
    (``layer_{L}.safetensors`` + ``config.yaml``), ``training.json``; then ``.complete`` and
    point ``current`` at ``out``."""
    import yaml  # noqa: PLC0415
    from safetensors.torch import save_file  # noqa: PLC0415

    d_model = model.cfg.d_model
    ct_dir = out / "circuit_tracer"
    ct_dir.mkdir(parents=True, exist_ok=True)
    ct_paths = []
    for layer, w in enumerate(layers):
        folder = out / "saelens" / cfg.source_id(layer)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in w.items()}, str(folder / "sae_weights.safetensors"))
        (folder / "cfg.json").write_text(json.dumps(saelens_cfg(cfg, layer, d_model), indent=2))
        path = ct_dir / f"layer_{layer}.safetensors"
        save_file({"W_enc": w["W_enc"].T.contiguous(), "W_dec": w["W_dec"].contiguous(),
                   "b_enc": w["b_enc"], "b_dec": w["b_dec"],
                   "activation_function.threshold": w["threshold"]}, str(path))
        ct_paths.append(str(path.resolve()))
    (ct_dir / "config.yaml").write_text(yaml.safe_dump({
        "model_kind": "transcoder_set", "model_name": cfg.model_id, "scan": cfg.set_name,
        "feature_input_hook": INPUT_HOOK, "feature_output_hook": "mlp.hook_out",
        "transcoders": ct_paths}, sort_keys=False))
    (out / "training.json").write_text(json.dumps(
        {"config": asdict(cfg), "result": result.to_dict(), "history": history}, indent=2))
    _checkpoint_path(out).unlink(missing_ok=True)
    (out / ".complete").write_text(cfg.version)
    point_current(out)


def point_current(out: Path) -> None:
    """Atomically make ``<set root>/current`` a symlink to ``versions/<v>``."""
    link = out.parent.parent / "current"
    tmp = out.parent.parent / f".current.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("versions") / out.name)
    tmp.replace(link)


def saelens_cfg(cfg: TranscoderTrainConfig, layer: int, d_model: int) -> dict[str, Any]:
    from inference_worker.demo_sae import CORPORA  # noqa: PLC0415

    spec = CORPORA[cfg.corpus]
    return {
        "architecture": "jumprelu_transcoder", "d_in": d_model, "d_sae": cfg.d_transcoder,
        "d_out": d_model, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": False,
        "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {
            "model_name": cfg.model_id, "hook_name": f"blocks.{layer}.{INPUT_HOOK}",
            "hook_name_out": f"blocks.{layer}.{OUTPUT_HOOK}", "hook_head_index": None,
            "context_size": cfg.context_size, "prepend_bos": False,
            "dataset_path": f"{cfg.corpus} ({spec.package}=={spec.version})",
            "neuronpedia_id": f"{cfg.model_id}/{cfg.source_id(layer)}",
            "transcoder_set": cfg.set_name, "transcoder_version": cfg.version,
            "sae_lens_version": _sae_lens_version(), "sae_lens_training_version": None,
        },
    }


def _sae_lens_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("sae-lens")


def remove_version(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)


def main() -> None:  # pragma: no cover - manual entry point (the job is manage.py train_transcoders)
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from inference_worker.models import load_smollm2  # noqa: PLC0415
    from inference_worker.runtime import pick_device  # noqa: PLC0415

    p = argparse.ArgumentParser(description="Train the demo transcoder set on SmolLM2 (all layers)")
    p.add_argument("--tokens", type=int, default=TranscoderTrainConfig.n_tokens)
    p.add_argument("--device", default="auto")
    a = p.parse_args()
    device = pick_device(a.device)
    if device == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))  # CpuThreads lowers it under load
    cfg = TranscoderTrainConfig(n_tokens=a.tokens)
    model = load_smollm2(device, cfg.model_dtype)
    t0 = time.perf_counter()
    result = train_transcoders(model, cfg, version_dir(cfg), progress=lambda d, t, m: print(
        f"[{time.perf_counter() - t0:7.1f}s] {d}/{t} {m}", file=sys.stderr, flush=True))
    print(json.dumps(result.to_dict() if result else None, indent=1))


if __name__ == "__main__":  # pragma: no cover
    main()
