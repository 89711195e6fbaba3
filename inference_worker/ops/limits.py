"""Request limits (prompt tokens, generated tokens, strengths, result counts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class LimitError(ValueError):
    """A request exceeds a configured limit; the message names the limit."""


@dataclass(frozen=True)
class Limits:
    token_limit: int = 200
    max_new_tokens: int = 256
    strength_min: float = -500.0
    strength_max: float = 500.0
    strength_multiplier_max: float = 10.0
    num_results_max: int = 1000
    cossim_results_max: int = 128
    max_logprobs: int = 20

    @classmethod
    def from_config(cls, config: Any) -> Limits:
        """From a ``WorkerConfig`` (or anything with the same attribute names)."""
        return cls(**{f: getattr(config, f) for f in cls.__dataclass_fields__})

    def check_prompt_tokens(self, n_tokens: int) -> None:
        if n_tokens > self.token_limit:
            raise LimitError(f"prompt has {n_tokens} tokens; token_limit is {self.token_limit}")

    def check_new_tokens(self, n_tokens: int) -> None:
        if not 1 <= n_tokens <= self.max_new_tokens:
            raise LimitError(
                f"n_tokens={n_tokens} is outside 1..max_new_tokens ({self.max_new_tokens})"
            )

    def check_strength(self, strength: float) -> None:
        if not self.strength_min <= strength <= self.strength_max:
            raise LimitError(
                f"strength {strength} is outside strength range "
                f"[{self.strength_min}, {self.strength_max}]"
            )

    def check_multiplier(self, multiplier: float) -> None:
        if abs(multiplier) > self.strength_multiplier_max:
            raise LimitError(
                f"strength_multiplier {multiplier} exceeds strength_multiplier_max "
                f"({self.strength_multiplier_max})"
            )

    def check_num_results(self, n: int, cap: int | None = None, name: str = "num_results_max"
                          ) -> None:
        cap = self.num_results_max if cap is None else cap
        if not 1 <= n <= cap:
            raise LimitError(f"numResults={n} is outside 1..{name} ({cap})")

    def check_logprobs(self, n: int) -> None:
        if not 0 <= n <= self.max_logprobs:
            raise LimitError(f"n_logprobs={n} is outside 0..max_logprobs ({self.max_logprobs})")


DEFAULT_LIMITS = Limits()
