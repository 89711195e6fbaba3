"""An activating example (tokens and their activation values): the unit every explainer, the offline
analysis (phrasing, offline) and the scorers work on. Here, below all of them, so that none imports
another just for it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    tokens: tuple[str, ...]
    values: tuple[float, ...]

    @property
    def max_value(self) -> float:
        return max(self.values, default=0.0)

    @property
    def text(self) -> str:
        return "".join(self.tokens)
