"""Steered generation: DEFAULT and STEERED completions with the same seed.

DEFAULT and STEERED run as rows of one batch (same prompt, so no padding) with one sampling
generator per row seeded identically, which is equivalent to re-seeding before each of two
independent generations. Steering hooks only touch the STEERED row. A TransformerLens KV
cache makes each new token one single-position forward pass.
"""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from inference_worker.models import model_device, model_tokenizer
from inference_worker.ops.limits import DEFAULT_LIMITS, Limits
from inference_worker.ops.tokens import (
    Tokenized,
    decode_text,
    special_ids,
    token_strings,
    tokenize,
    tokenize_ids,
)
from inference_worker.protocol import (
    ChatMessageDict,
    SteerOutputReply,
    SteerReply,
    SteerType,
    TokenLogprobReply,
)
from inference_worker.saes import FwdHooks, SourceRegistry

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer
    from transformer_lens.hook_points import HookPoint

SteerMethod = Literal["SIMPLE_ADDITIVE", "ORTHOGONAL_DECOMP", "PROJECTION_CAP"]


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class SteerFeature:
    source: str
    index: int
    strength: float


@dataclass(frozen=True, eq=False)
class SteerVector:
    hook_name: str
    vector: tuple[float, ...] | Tensor
    strength: float


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str

    def to_dict(self) -> ChatMessageDict:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, eq=False)
class SteerRequest:
    """One steering request. Give ``prompt`` (completion) XOR ``messages`` (chat)."""

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    features: tuple[SteerFeature, ...] = ()
    vectors: tuple[SteerVector, ...] = ()
    types: tuple[SteerType, ...] = ("STEERED", "DEFAULT")
    strength_multiplier: float = 1.0
    steer_method: SteerMethod = "SIMPLE_ADDITIVE"
    normalize_steering: bool = False
    n_tokens: int = 32
    temperature: float = 0.0
    seed: int = 0
    freq_penalty: float = 0.0
    n_logprobs: int = 0
    steer_special_tokens: bool = True  # chat only: False leaves special-token positions alone
    use_kv_cache: bool = True

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt or messages")
        if not self.types or len(set(self.types)) != len(self.types):
            raise ValueError(f"types must be a non-empty list without repeats: {self.types}")
        for t in self.types:
            if t not in get_args(SteerType):
                raise ValueError(f"unknown steer type {t!r}")
        if self.steer_method not in get_args(SteerMethod):
            raise ValueError(f"unknown steer_method {self.steer_method!r}")
        if "STEERED" in self.types and bool(self.features) == bool(self.vectors):
            raise ValueError("exactly one of features or vectors must be given")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if self.n_logprobs < 0:
            raise ValueError("n_logprobs must be >= 0")

    @property
    def is_chat(self) -> bool:
        return self.messages is not None


# ---------------------------------------------------------------- steering maths


def apply_steering(h: Float[Tensor, "... d"], v: Float[Tensor, " d"], coeff: float,
                   method: SteerMethod) -> Float[Tensor, "... d"]:
    """SIMPLE_ADDITIVE: h + c·v. ORTHOGONAL_DECOMP: (I−P)h + c·Ph with P = vvᵀ/‖v‖².
    PROJECTION_CAP: clamp the scalar projection of h on v̂ to at most c."""
    hf, vf = h.float(), v.float()
    if method == "SIMPLE_ADDITIVE":
        out = hf + coeff * vf
    elif method == "ORTHOGONAL_DECOMP":
        proj = (hf @ vf / (vf @ vf))[..., None] * vf  # P h
        out = hf - proj + coeff * proj
    elif method == "PROJECTION_CAP":
        unit = vf / vf.norm()
        excess = (hf @ unit - coeff).clamp_min(0)  # [...]
        out = hf - excess[..., None] * unit
    else:
        raise ValueError(f"unknown steer method {method!r}")
    return out.to(h.dtype)


@dataclass(frozen=True, eq=False)
class ResolvedSteer:
    hook_name: str
    vector: Float[Tensor, " d"]
    coeff: float


def resolve_steering(request: SteerRequest, registry: SourceRegistry | None,
                     limits: Limits = DEFAULT_LIMITS) -> list[ResolvedSteer]:
    """Look up decoder rows / raw vectors; coefficient = multiplier × strength."""
    limits.check_multiplier(request.strength_multiplier)
    out: list[ResolvedSteer] = []
    for f in request.features:
        if registry is None:
            raise ValueError("steering by feature needs a source registry")
        limits.check_strength(f.strength)
        src = registry.get(f.source)
        out.append(ResolvedSteer(src.hook_name, registry.decoder_vector(f.source, f.index),
                                 request.strength_multiplier * f.strength))
    for vec in request.vectors:
        limits.check_strength(vec.strength)
        out.append(ResolvedSteer(vec.hook_name, torch.as_tensor(vec.vector, dtype=torch.float32),
                                 request.strength_multiplier * vec.strength))
    for r in out:
        if not torch.isfinite(r.vector).all():
            raise ValueError("steering vector contains inf or nan values")
        if request.normalize_steering:
            norm = r.vector.float().norm()
            if norm == 0:
                raise ValueError("zero-norm steering vector cannot be normalised")
            object.__setattr__(r, "vector", r.vector.float() / norm)
    return out


@dataclass
class _StepMask:
    """Which (row, position) entries of the current forward chunk get steered."""

    value: Bool[Tensor, "batch pos"] | None = None


def _make_hook(steer: ResolvedSteer, method: SteerMethod, mask: _StepMask
               ) -> Callable[[Tensor, HookPoint], Tensor]:
    def hook(act: Tensor, hook: HookPoint) -> Tensor:
        shape = act.shape
        h = act.flatten(-2) if act.ndim == 4 else act  # hook_z [b, p, heads, d_head] → [b, p, d]
        if h.shape[-1] != steer.vector.shape[0]:
            raise ValueError(f"steering vector has d={steer.vector.shape[0]} but {hook.name} "
                             f"has d={h.shape[-1]}")
        v = steer.vector.to(device=h.device)
        new = apply_steering(h, v, steer.coeff, method)
        assert mask.value is not None
        m = mask.value.to(h.device)[..., None]  # [b, p, 1]
        return torch.where(m, new, h).reshape(shape)

    return hook


# ---------------------------------------------------------------- outputs


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]

    def to_dict(self) -> TokenLogprobReply:
        return {"token": self.token, "logprob": self.logprob,
                "topLogprobs": [{"token": t, "logprob": lp} for t, lp in self.top]}


@dataclass(frozen=True)
class SteerOutput:
    type: SteerType
    text: str  # generated continuation only
    token_ids: tuple[int, ...]
    logprobs: tuple[TokenLogprob, ...] | None
    finished: bool


@dataclass(frozen=True)
class SteerResult:
    request: SteerRequest
    prompt_text: str  # the prompt as the model saw it (chat template rendered, BOS dropped)
    prompt_tokens: Tokenized
    outputs: tuple[SteerOutput, ...]
    done: bool = False

    def output(self, steer_type: SteerType) -> SteerOutput:
        return next(o for o in self.outputs if o.type == steer_type)

    def to_dict(self) -> SteerReply:
        """Neuronpedia ``/steer/completion`` or ``/steer/completion-chat`` response shape."""
        outs: list[SteerOutputReply] = []
        for o in self.outputs:
            d: SteerOutputReply = {"type": o.type}
            if self.request.is_chat:
                assert self.request.messages is not None
                msgs = [m.to_dict() for m in self.request.messages]
                d["raw"] = self.prompt_text + o.text
                d["chatTemplate"] = [*msgs, {"role": "assistant", "content": o.text}]
            else:
                d["output"] = (self.request.prompt or "") + o.text
            if o.logprobs is not None:
                d["logprobs"] = [lp.to_dict() for lp in o.logprobs]
            outs.append(d)
        if not self.request.is_chat:
            return {"outputs": outs}
        assert self.request.messages is not None
        return {"input": {"chatTemplate": [m.to_dict() for m in self.request.messages],
                          "raw": self.prompt_text}, "outputs": outs}


# ---------------------------------------------------------------- generation


def _prompt_tokens(model: HookedTransformer, request: SteerRequest, limits: Limits
                   ) -> tuple[Tokenized, str]:
    tokenizer = model_tokenizer(model)
    if request.messages is not None:
        text = tokenizer.apply_chat_template([{"role": m.role, "content": m.content}
                                              for m in request.messages],
                                             tokenize=False, add_generation_prompt=True)
        assert isinstance(text, str)  # tokenize=False: the rendered prompt
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        return tokenize_ids(model, ids, prepend_bos=False, limits=limits), text
    assert request.prompt is not None
    return tokenize(model, request.prompt, None, limits), request.prompt


def _sample(logits: Float[Tensor, "batch vocab"], temperature: float,
            generators: list[torch.Generator]) -> Tensor:
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.cat([torch.multinomial(probs[r], 1, generator=g)
                      for r, g in enumerate(generators)])


@dataclass
class _RowState:
    type: SteerType
    ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finished: bool = False


@torch.inference_mode()
def steer_stream(model: HookedTransformer, request: SteerRequest,
                 registry: SourceRegistry | None = None, limits: Limits = DEFAULT_LIMITS
                 ) -> Iterator[SteerResult]:
    """Yield a ``SteerResult`` after every generated token (whole text so far per type).

    The last item has ``done=True``. Generation stops at EOS or after ``n_tokens`` (clamped to
    the model's context). ``freq_penalty`` follows TransformerLens: logits minus penalty × count
    of each token in the sequence so far (prompt included). Logprobs are from the unmodified
    model distribution (before penalty and temperature).
    """
    limits.check_new_tokens(request.n_tokens)
    limits.check_logprobs(request.n_logprobs)
    steers = resolve_steering(request, registry, limits) if "STEERED" in request.types else []
    tokens, prompt_text = _prompt_tokens(model, request, limits)
    n_new = min(request.n_tokens, model.cfg.n_ctx - len(tokens))
    if n_new < 1:
        raise ValueError(f"prompt fills the model context ({model.cfg.n_ctx} tokens)")
    rows = [_RowState(t) for t in request.types]
    steered_rows = torch.tensor([r.type == "STEERED" for r in rows])
    tokenizer = model_tokenizer(model)
    specials = special_ids(tokenizer)
    stops = stop_token_ids(tokenizer)
    mask = _StepMask()
    hooks: FwdHooks = [(s.hook_name, _make_hook(s, request.steer_method, mask)) for s in steers]
    device = model_device(model)
    gens = [torch.Generator(device=device).manual_seed(request.seed) for _ in rows]
    seq = tokens.tensor(device).repeat(len(rows), 1)  # [batch, pos]
    counts = torch.zeros(len(rows), model.cfg.d_vocab_out, device=device)
    counts.scatter_add_(1, seq, torch.ones_like(seq, dtype=counts.dtype))
    kv = _init_kv(model, len(rows)) if request.use_kv_cache else None
    chunk = seq
    with model.hooks(fwd_hooks=hooks):
        for step in range(n_new):
            mask.value = _steer_mask(chunk, steered_rows, specials,
                                     request.is_chat and not request.steer_special_tokens)
            logits = model(chunk, past_kv_cache=kv) if kv is not None else model(chunk)
            last = logits[:, -1, :].float()  # [batch, vocab]
            nxt = _sample(last - request.freq_penalty * counts, request.temperature, gens)
            logp = torch.log_softmax(last, dim=-1)
            _record(model, rows, nxt, logp, request.n_logprobs, stops)
            counts.scatter_add_(1, nxt[:, None], torch.ones(len(rows), 1, device=device))
            seq = torch.cat([seq, nxt[:, None]], dim=1)
            chunk = nxt[:, None] if kv is not None else seq  # without a cache: full recompute
            done = all(r.finished for r in rows) or step == n_new - 1
            yield _result(model, request, prompt_text, tokens, rows, done)
            if done:
                return


def _init_kv(model: HookedTransformer, batch: int) -> Any:
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    return TransformerLensKeyValueCache.init_cache(model.cfg, model_device(model), batch)


def _steer_mask(chunk: Tensor, steered_rows: Tensor, specials: frozenset[int],
                skip_special: bool) -> Bool[Tensor, "batch pos"]:
    m = steered_rows[:, None].expand(chunk.shape).clone()
    if skip_special and specials:
        special = torch.isin(chunk.cpu(), torch.tensor(sorted(specials)))
        m &= ~special
    return m


_END_TOKENS = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "</s>")


def stop_token_ids(tokenizer: Any) -> frozenset[int]:
    """EOS plus the usual end-of-text/end-of-turn specials the tokenizer knows."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for tok, tid in zip(tokenizer.all_special_tokens, tokenizer.all_special_ids, strict=True):
        if tok in _END_TOKENS:
            ids.add(int(tid))
    return frozenset(ids)


def _record(model: HookedTransformer, rows: list[_RowState], nxt: Tensor, logp: Tensor,
            n_logprobs: int, stops: frozenset[int]) -> None:
    for r, row in enumerate(rows):
        if row.finished:
            continue
        tok = int(nxt[r])
        if tok in stops:
            row.finished = True
            continue
        row.ids.append(tok)
        if n_logprobs > 0:
            top = logp[r].topk(min(n_logprobs, logp.shape[-1]))
            top_ids = top.indices.tolist()
            strs = token_strings(model_tokenizer(model), [tok, *top_ids])
            row.logprobs.append(TokenLogprob(
                strs[0], float(logp[r, tok]),
                tuple(zip(strs[1:], top.values.tolist(), strict=True))))


def _result(model: HookedTransformer, request: SteerRequest, prompt_text: str,
            tokens: Tokenized, rows: list[_RowState], done: bool) -> SteerResult:
    outs = tuple(
        SteerOutput(row.type, decode_text(model_tokenizer(model), row.ids), tuple(row.ids),
                    tuple(row.logprobs) if request.n_logprobs > 0 else None, row.finished)
        for row in rows)
    return SteerResult(request, prompt_text, tokens, outs, done)


def steer(model: HookedTransformer, request: SteerRequest, registry: SourceRegistry | None = None,
          limits: Limits = DEFAULT_LIMITS) -> SteerResult:
    """Run :func:`steer_stream` to the end and return the final result."""
    result = None
    for result in steer_stream(model, request, registry, limits):  # noqa: B007
        pass
    assert result is not None
    return result


