"""Dashboard generation jobs: start one (create a Job, enqueue it on the model's inference queue) and
write a finished result into Feature / Activation / Eval rows.

The compute runs on the model's inference worker (inference/tasks/dashboards.py); this module
holds the database side. `write_dashboards` replaces a source's generated data in ONE transaction:
feature statistics are upserted, the source's generated activations (creator IS NULL) are deleted and
the new ones COPY-ed in, and the `core` Eval row is replaced, so readers see the old dashboards or the
new ones, never a mix, and running it twice leaves the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from features.models import Activation, Eval, Feature, Source, SourceSet
from inference_worker.protocol import GENERATE_DASHBOARDS_TASK
from neuronpedia.jobs import registry
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.jobs.services import create_job
from neuronpedia.queues import inference_queue

TASK_NAME = GENERATE_DASHBOARDS_TASK  # the name workers and stored jobs know
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
            registry.enqueue(job)
    return job


def enqueue_dashboard_job(job: Job) -> None:
    from neuronpedia.celery import app  # noqa: PLC0415

    app.send_task(TASK_NAME, args=[job.id], queue=inference_queue(job.model_id_ref))


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


_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_COPY_TRAILER = b"\xff\xff"
_OID_TEXT, _OID_FLOAT4 = 25, 700
COPY_ROWS = 8192  # examples encoded per block (bounds the temporary index arrays)


def _activation_blocks(result: Any, ids: dict[int, int], lo: int, hi: int, data_source: str,
                       now: datetime, batch: Any = None) -> Iterable[tuple[int, bytes]]:
    """Binary-COPY blocks (PostgreSQL's binary format, one tuple per example, ACTIVATION_COLUMNS) of
    features lo..hi-1 as (rows, bytes), built in bulk from the result's example columns (`batch`, or
    the result's): no Python object per example or per token. _copy_activations adds the COPY signature
    and trailer. DFA arrays are written afterwards by _write_dfa (few rows, and only for attention SAEs)."""
    batch = batch if batch is not None else result.example_batch(lo, hi)
    if not len(batch):
        return
    feature_ids = np.zeros(hi - lo, dtype=np.int64)
    for f in range(lo, hi):
        feature_ids[f - lo] = ids[f]
    token_ids = batch.token_ids.numpy()
    present = np.zeros(int(token_ids.max()) + 1, dtype=bool)  # ids used, without sorting them all
    present[token_ids.ravel()] = True
    vocab = np.flatnonzero(present)
    remap = np.zeros(len(present), dtype=np.int64)
    remap[vocab] = np.arange(len(vocab))
    inverse = remap[token_ids]
    strings = result.token_strings(vocab.tolist())
    encoded = [strings[int(t)].encode() for t in vocab.tolist()]
    entries = [len(e).to_bytes(4, "big") + e for e in encoded]  # text[] element: int32 length + utf-8
    entry_len = np.array([len(e) for e in entries], dtype=np.int64)
    stamp = (now - _PG_EPOCH) // timedelta(microseconds=1)
    for r0 in range(0, len(batch), COPY_ROWS):
        rows = slice(r0, min(r0 + COPY_ROWS, len(batch)))
        yield rows.stop - rows.start, _encode_block(
            batch, rows, feature_ids, lo, inverse, entries, entry_len, data_source.encode(), stamp)


def _encode_block(batch: Any, rows: slice, feature_ids: np.ndarray, lo: int, inverse: np.ndarray,
                  entries: list[bytes], entry_len: np.ndarray, data_source: bytes, stamp: int) -> bytes:
    inv = inverse[rows]
    n, ctx = inv.shape
    tok_bytes = entry_len[inv].sum(1)
    head = np.zeros(n, dtype=np.dtype([
        ("nfields", ">i2"), ("l_feature", ">i4"), ("feature", ">i8"), ("l_external", ">i4"),
        ("l_tokens", ">i4"), ("ndim", ">i4"), ("flags", ">i4"), ("oid", ">i4"), ("dim", ">i4"),
        ("lbound", ">i4")]))
    head["nfields"], head["l_feature"] = len(ACTIVATION_COLUMNS), 8
    head["feature"] = feature_ids[batch.feature[rows].numpy() - lo]
    head["l_tokens"] = 20 + tok_bytes
    head["ndim"], head["oid"], head["dim"], head["lbound"] = 1, _OID_TEXT, ctx, 1
    fields_ = [("l_values", ">i4"), ("v_ndim", ">i4"), ("v_flags", ">i4"), ("v_oid", ">i4"),
               ("v_dim", ">i4"), ("v_lbound", ">i4"),
               ("values", np.dtype([("len", ">i4"), ("v", ">f4")]), (ctx,))]
    scalars = [("max_value", ">f4"), ("max_value_token_index", ">i4"), ("min_value", ">f4"),
               ("bin_min", ">f4"), ("bin_max", ">f4"), ("bin_contains", ">f4"),
               ("qualifying_token_index", ">i4")]
    for name, typ in scalars:
        fields_ += [("l_" + name, ">i4"), (name, typ)]
    fields_ += [("l_source", ">i4")] + ([("source", f"S{len(data_source)}")] if data_source else [])
    fields_ += [("l_index", ">i4"), ("data_index", ">i8"), ("l_dfa", ">i4"), ("d_ndim", ">i4"),
                ("d_flags", ">i4"), ("d_oid", ">i4"), ("l_created", ">i4"), ("created", ">i8")]
    tail = np.zeros(n, dtype=np.dtype(fields_))
    tail["l_values"] = 20 + 8 * ctx
    tail["v_ndim"], tail["v_oid"], tail["v_dim"], tail["v_lbound"] = 1, _OID_FLOAT4, ctx, 1
    tail["values"]["len"] = 4
    tail["values"]["v"] = batch.values[rows].numpy()
    for name, _typ in scalars:
        tail["l_" + name] = 4
        tail[name] = getattr(batch, name)[rows].numpy()
    tail["l_source"] = len(data_source)
    if data_source:
        tail["source"] = data_source
    tail["l_index"], tail["data_index"] = 8, batch.sequence[rows].numpy()
    tail["l_dfa"], tail["d_oid"] = 12, _OID_FLOAT4  # an empty real[] (ndim 0)
    tail["l_created"], tail["created"] = 8, stamp
    hb, tb = head.tobytes(), tail.tobytes()
    hs, ts = head.itemsize, tail.itemsize
    get = entries.__getitem__
    return b"".join(part for i, row in enumerate(inv.tolist()) for part in (
        hb[i * hs:(i + 1) * hs], b"".join(map(get, row)), tb[i * ts:(i + 1) * ts]))


def _copy_activations(blocks: Iterable[tuple[int, bytes]]) -> int:
    """COPY binary blocks (from _activation_blocks) into the activation table; returns the rows."""
    n = 0
    table = Activation._meta.db_table
    with connection.cursor() as cursor:
        sql = f"COPY {table} ({', '.join(ACTIVATION_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        with cursor.cursor.copy(sql) as copy:
            copy.write(_COPY_SIGNATURE)
            for rows, block in blocks:
                copy.write(block)
                n += rows
            copy.write(_COPY_TRAILER)
    return n


DFA_SQL = (
    f"UPDATE {Activation._meta.db_table} AS a "
    "SET dfa_values = d.vals, dfa_target_index = d.target, dfa_max_value = d.mx "
    "FROM (SELECT unnest(%s::bigint[]) AS feature_id, unnest(%s::bigint[]) AS data_index, "
    "unnest(%s::int[]) AS target, unnest(%s::real[]) AS mx, unnest(%s::text[])::real[] AS vals) AS d "
    "WHERE a.feature_id = d.feature_id AND a.data_index = d.data_index "
    "AND a.qualifying_token_index = d.target AND a.bin_min = -1 AND a.creator_id IS NULL")


def _write_dfa(batch: Any, ids: dict[int, int], lo: int) -> int:
    """Store the DFA of the batch's top-group examples (attention SAEs) on the rows just copied, matched by
    (feature, sequence, qualifying token): dfa_values, dfa_target_index (= the qualifying token) and
    dfa_max_value, as Neuronpedia's activations carry them. Returns the rows updated."""
    dfa = batch.dfa()
    if not dfa:
        return 0
    rows = sorted(dfa)
    features = batch.feature[rows].tolist()
    values = [dfa[r] for r in rows]
    with connection.cursor() as cursor:
        cursor.execute(DFA_SQL, [
            [ids[f] for f in features], batch.sequence[rows].tolist(),
            batch.qualifying_token_index[rows].tolist(), [max(v) for v in values],
            ["{" + ",".join(repr(float(x)) for x in v) + "}" for v in values]])
        return cursor.rowcount


def delete_generated_activations(source: Source) -> int:
    """Delete the source's generated activation rows (creator NULL; users' own examples stay), by the
    source's feature ids: one `feature_id = ANY(ids)` probe of the (feature, -max_value) index per feature,
    so the cost is linear in the rows deleted whatever the planner's statistics say. (The ORM's
    `filter(feature__source=...).delete()` became `id IN (SELECT ... JOIN features_feature ...)`, which,
    right after bulk writes with no statistics yet, PostgreSQL planned as a nested loop over the whole
    table: minutes for one source.) Returns the number of rows deleted."""
    feature_ids = list(Feature.objects.filter(source=source).values_list("id", flat=True))
    if not feature_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(DELETE_GENERATED_SQL, [feature_ids])
        return cursor.rowcount


DELETE_GENERATED_SQL = (f"DELETE FROM {Activation._meta.db_table} "
                        "WHERE feature_id = ANY(%s::bigint[]) AND creator_id IS NULL")


def write_dashboards(*, source: Source, result: Any, dataset: str, context_size: int) -> dict[str, Any]:
    """Replace the source's generated dashboards with `result` (an inference_worker DashboardResult),
    atomically. Safe to run twice: feature rows are upserted and generated activations replaced."""
    now = timezone.now()
    n_acts = n_dfa = 0
    with transaction.atomic():
        Source.objects.select_for_update().filter(pk=source.pk).first()
        for lo in range(0, result.d_sae, FEATURE_BATCH):
            Feature.objects.bulk_create(
                _feature_rows(source, result, lo, min(lo + FEATURE_BATCH, result.d_sae)),
                update_conflicts=True, unique_fields=["source", "index"], update_fields=FEATURE_FIELDS)
        ids = dict(Feature.objects.filter(source=source, index__lt=result.d_sae)
                   .values_list("index", "id"))
        delete_generated_activations(source)
        for lo in range(0, result.d_sae, FEATURE_BATCH):
            hi = min(lo + FEATURE_BATCH, result.d_sae)
            batch = result.example_batch(lo, hi)
            n_acts += _copy_activations(_activation_blocks(result, ids, lo, hi, GENERATED_DATA_SOURCE, now,
                                                           batch=batch))
            n_dfa += _write_dfa(batch, ids, lo)
        Eval.objects.update_or_create(source=source, type=CORE_EVAL,
                                      defaults={"output": _json_safe(result.evals),
                                                "detailed": {"dataset": dataset}})
        Source.objects.filter(pk=source.pk).update(
            has_dashboards=True, has_umap=result.umap_xy is not None,
            has_umap_clusters=result.umap_cluster is not None, num_prompts=result.n_seqs,
            num_tokens_in_prompt=context_size, dataset=dataset[:300], num_features=result.d_sae,
            updated_at=now)
        if n_dfa:  # an attention SAE: its set's feature pages show the DFA rows (Neuronpedia's showDfa)
            SourceSet.objects.filter(pk=source.source_set_id).update(show_dfa=True)
    return {"features": result.d_sae, "activations": n_acts, "dead": int(result.is_dead.sum()),
            "sequences": result.n_seqs, "tokens": result.n_tokens, "evals": _json_safe(result.evals)}


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: store them as null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
