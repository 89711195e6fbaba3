"""Tokenisation with explicit BOS handling."""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Int
from torch import Tensor

from inference_worker.models import model_tokenizer
from inference_worker.ops.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Tokenized:
    ids: tuple[int, ...]
    strings: tuple[str, ...]
    is_special: tuple[bool, ...]
    prepend_bos: bool

    def __len__(self) -> int:
        return len(self.ids)

    def tensor(self, device: torch.device | str) -> Int[Tensor, "1 pos"]:
        return torch.tensor([self.ids], dtype=torch.long, device=device)

    @property
    def starts_with_bos(self) -> bool:
        return self.prepend_bos or (len(self.is_special) > 0 and self.is_special[0])

    def to_dict(self) -> dict[str, list[int] | list[str] | bool]:
        return {"tokens": list(self.ids), "tokenStrings": list(self.strings),
                "prependBos": self.prepend_bos}


def decode_text(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    """The text of one sequence of ids (``decode`` is typed for batches too)."""
    text = tokenizer.decode(ids)
    assert isinstance(text, str)  # one sequence decodes to one string
    return text


def special_ids(tokenizer: Any) -> frozenset[int]:
    return frozenset(int(i) for i in tokenizer.all_special_ids)


def token_strings(tokenizer: Any, ids: list[int] | tuple[int, ...]) -> list[str]:
    return list(tokenizer.batch_decode([[i] for i in ids]))


def tokenize_ids(model: HookedTransformer, ids: list[int], prepend_bos: bool | None = None,
                 limits: Limits | None = DEFAULT_LIMITS) -> Tokenized:
    tokenizer = model_tokenizer(model)
    if prepend_bos is None:
        prepend_bos = bool(model.cfg.default_prepend_bos)
    bos = tokenizer.bos_token_id
    if prepend_bos and bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids]
    if not ids:
        raise ValueError("prompt is empty")
    if limits is not None:
        limits.check_prompt_tokens(len(ids))
    specials = special_ids(tokenizer)
    return Tokenized(ids=tuple(ids), strings=tuple(token_strings(tokenizer, ids)),
                     is_special=tuple(i in specials for i in ids), prepend_bos=prepend_bos)


def tokenize(model: HookedTransformer, text: str, prepend_bos: bool | None = None,
             limits: Limits | None = DEFAULT_LIMITS) -> Tokenized:
    """Token ids, strings and special flags; ``prepend_bos=None`` uses the model default.

    Special tokens written in the text (e.g. ``<|im_start|>``) are parsed as such; a BOS
    already at the start of the text is not doubled.
    """
    ids = list(model_tokenizer(model)(text, add_special_tokens=False)["input_ids"])
    return tokenize_ids(model, ids, prepend_bos, limits)
