"""Dashboard generation jobs: start one (create a Job, enqueue it on the model's inference queue) and
write a finished result into Feature / Activation / Eval rows.

The compute runs on the model's inference worker (inference_worker/dashboard_tasks.py); this module
holds the database side. `write_dashboards` replaces a source's generated data in ONE transaction:
feature statistics are upserted, the source's generated activations (creator IS NULL) are deleted and
the new ones COPY-ed in, and the `core` Eval row is replaced, so readers see the old dashboards or the
new ones, never a mix, and running it twice leaves the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from features.models import Activation, Eval, Feature, Source
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.jobs.services import create_job, requeue_job
from neuronpedia.queues import inference_queue

TASK_NAME = "inference_worker.tasks.generate_dashboards"
FEATURE_BATCH = 2000
CORE_EVAL = "core"
GENERATED_DATA_SOURCE = "generated"

FEATURE_FIELDS = [
    "max_act_approx", "frac_nonzero", "is_dead", "freq_hist_data_bar_heights",
    "freq_hist_data_bar_values", "logits_hist_data_bar_heights", "logits_hist_data_bar_values",
    "pos_str", "pos_values", "neg_str", "neg_values", "topk_cos_sim_indices", "topk_cos_sim_values",
    "umap_x", "umap_y", "umap_cluster", "umap_log_feature_sparsity",
]
ACTIVATION_COLUMNS = [
    "feature_id", "external_id", "tokens", "values", "max_value", "max_value_token_index", "min_value",
    "bin_min", "bin_max", "bin_contains", "qualifying_token_index", "data_source", "data_index",
    "dfa_values", "created_at",
]
ACTIVATION_TYPES = ["bigint", "varchar", "text[]", "real[]", "real", "integer", "real", "real", "real",
                    "real", "integer", "varchar", "bigint", "real[]", "timestamptz"]


@dataclass(frozen=True)
class DashboardParams:
    """What a job generates; stored as Job.params (JSON) and validated on the way in."""

    dataset: str = "corpus:brown"
    n_tokens: int = 204_800
    context_size: int = 128
    batch_size: int = 32
    checkpoint_every: int = 10  # batches
    top_k: int = 30
    n_bins: int = 5
    bin_size: int = 5
    skip_positions: int = 2
    eval_sequences: int = 32
    umap: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.context_size < 2:
            raise ValueError("context_size must be >= 2")
        if self.n_tokens < self.context_size:
            raise ValueError("n_tokens must be at least one context")
        for name in ("batch_size", "checkpoint_every", "top_k", "n_bins", "bin_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.skip_positions >= self.context_size:
            raise ValueError("skip_positions must be < context_size")

    @property
    def n_sequences(self) -> int:
        return math.ceil(self.n_tokens / self.context_size)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DashboardParams:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dashboard_config(self) -> dict[str, Any]:
        """Keyword arguments of inference_worker.dashboards.DashboardConfig."""
        return {k: getattr(self, k) for k in ("top_k", "n_bins", "bin_size", "skip_positions",
                                              "eval_sequences", "umap", "seed")}


# --- starting jobs --------------------------------------------------------------------------------

def start_dashboard_job(*, source: Source, params: DashboardParams | None = None,
                        requested_by: Any = None, enqueue: bool = True) -> Job:
    """Create a GENERATE_DASHBOARDS job for `source` and send it to the model's inference queue once
    the transaction commits. `enqueue=False` leaves it QUEUED for an in-process run (--inline)."""
    params = params or DashboardParams()
    with transaction.atomic():
        job = create_job(kind=JobKind.GENERATE_DASHBOARDS,
                         title=f"Dashboards for {source.model_id}/{source.name}",
                         params=params.to_dict(), total=params.n_sequences, requested_by=requested_by,
                         model_id_ref=source.model_id, source_ref=source.name)
        if enqueue:
            transaction.on_commit(lambda: enqueue_dashboard_job(job))
    return job


def enqueue_dashboard_job(job: Job) -> None:
    from neuronpedia.celery import app  # noqa: PLC0415

    app.send_task(TASK_NAME, args=[job.id], queue=inference_queue(job.model_id_ref))


def resume_dashboard_job(job_id: int) -> bool:
    """Re-queue a FAILED/CANCELLED job; the worker resumes from its checkpoint."""
    with transaction.atomic():
        if not requeue_job(job_id):
            return False
        job = Job.objects.get(id=job_id)
        transaction.on_commit(lambda: enqueue_dashboard_job(job))
    return True


# --- writing results ------------------------------------------------------------------------------

def _floats(values: Any) -> list[float]:
    return [float(v) for v in values]


def _feature_rows(source: Source, result: Any, lo: int, hi: int) -> list[Feature]:
    strings = result.token_strings(result.pos_ids[lo:hi].flatten().tolist()
                                   + result.neg_ids[lo:hi].flatten().tolist())
    rows = []
    for f in range(lo, hi):
        dead = bool(result.is_dead[f])
        frac = float(result.frac_nonzero[f])
        heights, values = result.freq_hist[f]
        rows.append(Feature(
            source=source, index=f, max_act_approx=float(result.max_act[f]), frac_nonzero=frac,
            is_dead=dead, freq_hist_data_bar_heights=_floats(heights),
            freq_hist_data_bar_values=_floats(values),
            logits_hist_data_bar_heights=_floats(result.logit_hist_heights[f].tolist()),
            logits_hist_data_bar_values=_floats(result.logit_hist_values[f].tolist()),
            pos_str=[strings[i] for i in result.pos_ids[f].tolist()],
            pos_values=_floats(result.pos_values[f].tolist()),
            neg_str=[strings[i] for i in result.neg_ids[f].tolist()],
            neg_values=_floats(result.neg_values[f].tolist()),
            topk_cos_sim_indices=result.cos_indices[f].tolist(),
            topk_cos_sim_values=_floats(result.cos_values[f].tolist()),
            umap_x=None if result.umap_xy is None else float(result.umap_xy[f, 0]),
            umap_y=None if result.umap_xy is None else float(result.umap_xy[f, 1]),
            umap_cluster=None if result.umap_cluster is None else int(result.umap_cluster[f]),
            umap_log_feature_sparsity=math.log10(frac) if frac > 0 else None,
        ))
    return rows


def _activation_rows(result: Any, ids: dict[int, int], lo: int, hi: int, data_source: str,
                     now: datetime) -> Iterable[tuple[Any, ...]]:
    per_feature = result.examples(lo, hi)
    strings = result.token_strings({t for exs in per_feature for e in exs for t in e.token_ids})
    for exs in per_feature:
        for e in exs:
            yield (ids[e.feature], "", [strings[t] for t in e.token_ids], e.values, e.max_value,
                   e.max_value_token_index, e.min_value, e.bin_min, e.bin_max, e.bin_contains,
                   e.qualifying_token_index, data_source, e.sequence, [], now)


def _copy_activations(rows: Iterable[tuple[Any, ...]]) -> int:
    n = 0
    table = Activation._meta.db_table
    with connection.cursor() as cursor:
        sql = f"COPY {table} ({', '.join(ACTIVATION_COLUMNS)}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            copy.set_types(ACTIVATION_TYPES)
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def write_dashboards(*, source: Source, result: Any, dataset: str, context_size: int) -> dict[str, Any]:
    """Replace the source's generated dashboards with `result` (an inference_worker DashboardResult),
    atomically. Safe to run twice: feature rows are upserted and generated activations replaced."""
    now = timezone.now()
    n_acts = 0
    with transaction.atomic():
        Source.objects.select_for_update().filter(pk=source.pk).first()
        for lo in range(0, result.d_sae, FEATURE_BATCH):
            Feature.objects.bulk_create(
                _feature_rows(source, result, lo, min(lo + FEATURE_BATCH, result.d_sae)),
                update_conflicts=True, unique_fields=["source", "index"], update_fields=FEATURE_FIELDS)
        ids = dict(Feature.objects.filter(source=source, index__lt=result.d_sae)
                   .values_list("index", "id"))
        Activation.objects.filter(feature__source=source, creator__isnull=True).delete()
        for lo in range(0, result.d_sae, FEATURE_BATCH):
            hi = min(lo + FEATURE_BATCH, result.d_sae)
            n_acts += _copy_activations(_activation_rows(result, ids, lo, hi, GENERATED_DATA_SOURCE, now))
        Eval.objects.update_or_create(source=source, type=CORE_EVAL,
                                      defaults={"output": _json_safe(result.evals),
                                                "detailed": {"dataset": dataset}})
        Source.objects.filter(pk=source.pk).update(
            has_dashboards=True, has_umap=result.umap_xy is not None,
            has_umap_clusters=result.umap_cluster is not None, num_prompts=result.n_seqs,
            num_tokens_in_prompt=context_size, dataset=dataset[:300], num_features=result.d_sae,
            updated_at=now)
    return {"features": result.d_sae, "activations": n_acts, "dead": int(result.is_dead.sum()),
            "sequences": result.n_seqs, "tokens": result.n_tokens, "evals": _json_safe(result.evals)}


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: store them as null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
