"""Reads of stored steering outputs (share pages, /api/steer-load)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, Q

from features.models import Feature
from steering.models import SteerOutput, SteerOutputFeature, SteerType


@dataclass(frozen=True)
class SteerPair:
    """A shared steering result: the STEERED output (its id is the share id) and its DEFAULT."""

    steered: SteerOutput
    default: SteerOutput | None

    @property
    def share_id(self) -> str:
        return self.steered.id

    @property
    def is_chat(self) -> bool:
        return self.steered.chat_messages is not None


def _queryset():  # type: ignore[no-untyped-def]
    return SteerOutput.objects.select_related("model", "connected_default_output").prefetch_related(
        Prefetch("steer_features", queryset=SteerOutputFeature.objects
                 .select_related("feature__source").order_by("id")))


def get_steer_result(share_id: str) -> SteerPair | None:
    """The pair behind `/steer/{share_id}`. A DEFAULT id finds the most recent STEERED output linked to
    it. None when unknown (or a DEFAULT no STEERED output points at)."""
    row = _queryset().filter(pk=share_id).first()
    if row is None:
        return None
    if row.type == SteerType.STEERED:
        return SteerPair(steered=row, default=row.connected_default_output)
    steered = _queryset().filter(connected_default_output=row).order_by("-created_at").first()
    return SteerPair(steered=steered, default=row) if steered else None


def steer_feature_rows(keys: list[tuple[str, str, int]]) -> list[Feature]:
    """Feature rows (SAE latents or vectors, with the vector values) for (model, source, index) keys, with
    the source, model and source set that visibility checks read. Missing keys are simply absent."""
    if not keys:
        return []
    condition = Q()
    for model_id, source_name, index in keys:
        condition |= Q(source__model_id=model_id, source__name=source_name, index=index)
    return list(Feature.objects.select_related("source__model", "source__source_set").filter(condition))
