"""High-volume explanation and scoring over a source or a list of features, as one Job.

LLM calls run on a thread pool (`concurrency`) behind a requests-per-minute limiter; every database read
and write stays on the calling thread. Only transient provider errors (timeouts, connection errors, 5xx,
429 with Retry-After) are retried, with exponential backoff and jitter; a final provider error (rejected
or exhausted key) stops the job FAILED with the reason. Work already done is skipped, so a killed,
cancelled or failed job resumes where it stopped when it is re-queued.

`start_autointerp_batch` creates the job and enqueues it through the job registry (neuronpedia.jobs);
the task (autointerp.tasks) claims it and calls `run_autointerp_job`. Each result is stored by
autointerp.services, as one explanation or score made outside a batch.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, TypeVar

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from autointerp import services
from autointerp.explainers import (
    EXPLAINERS,
    NP_MAX_ACT_LOGITS,
    OFFLINE_EXPLAINERS,
    ExplainerSettings,
    evidence_for_feature,
    explain,
)
from autointerp.llm import (
    LOCAL_MODEL,
    ChatBackend,
    ProviderError,
    UnparseableOutput,
    get_backend,
    resolve_provider,
)
from autointerp.offline import SCORER_VERSION
from autointerp.scorers import EMBEDDING, SCORE_TYPES, ScoringFailed, score, scoring_set_for_feature
from features.embedders_registry import DEFAULT_EMBEDDER
from features.models import Explanation, ExplanationScore, Feature, ScoreStatus, Source
from neuronpedia.jobs import registry
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job, JobKind

T = TypeVar("T")


@dataclass(frozen=True)
class BatchParams:
    action: Literal["explain", "score"] = "explain"
    source_id: int | None = None
    feature_ids: tuple[int, ...] = ()
    explainer_type: str = NP_MAX_ACT_LOGITS
    model: str = LOCAL_MODEL
    score_types: tuple[str, ...] = ()
    scorer_model: str | None = None
    concurrency: int = 4
    rpm: int = 0  # requests per minute; 0 = unlimited
    max_retries: int = 4
    backoff_s: float = 1.0
    embed: bool = True
    score: bool = True  # explain: also compute the headline score (held-out embedding) of each new one
    use_llm: str = "auto"  # np_offline: when to ask the local LLM: auto (no dominant token) / always / never
    limit: int | None = None
    user_id: int | None = None

    def __post_init__(self) -> None:
        if self.action not in ("explain", "score"):
            raise ValueError(f"action must be 'explain' or 'score', not {self.action!r}")
        if (self.source_id is None) == (not self.feature_ids):
            raise ValueError("give exactly one of a source or a list of features")
        if self.explainer_type not in EXPLAINERS:
            raise ValueError(f"unknown explainer {self.explainer_type!r}; known: {', '.join(EXPLAINERS)}")
        if self.action == "score" and not self.score_types:
            raise ValueError("scoring needs at least one score type")
        unknown = set(self.score_types) - set(SCORE_TYPES)
        if unknown:
            raise ValueError(f"unknown score types {sorted(unknown)}; known: {', '.join(SCORE_TYPES)}")
        if not 1 <= self.concurrency <= 256:
            raise ValueError("concurrency must be between 1 and 256")
        if self.use_llm not in ("auto", "always", "never"):
            raise ValueError("use_llm must be auto, always or never")
        if self.rpm < 0 or self.max_retries < 0:
            raise ValueError("rpm and max_retries must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchParams:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("feature_ids", "score_types"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["feature_ids"], data["score_types"] = list(self.feature_ids), list(self.score_types)
        return data


class RateLimiter:
    """Spaces request starts at least 60/rpm seconds apart across threads (rpm=0: no limit)."""

    def __init__(self, rpm: int) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def call_with_retries(fn: Callable[[], T], *, limiter: RateLimiter, max_retries: int, backoff_s: float) -> T:
    """Call `fn`, retrying transient ProviderErrors with exponential backoff + jitter (or Retry-After)."""
    for attempt in range(max_retries + 1):
        limiter.wait()
        try:
            return fn()
        except ProviderError as exc:
            if not exc.transient or attempt == max_retries:
                raise
            delay = exc.retry_after if exc.retry_after is not None else backoff_s * 2**attempt
            time.sleep(min(60.0, delay * (1 + 0.25 * random.random())))
    raise AssertionError("unreachable")


class BatchAborted(Exception):
    """A final provider error: every further call would fail the same way."""


@dataclass
class BatchCounts:
    done: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    requests: int = 0

    def as_json(self, errors: list[str]) -> dict[str, Any]:
        return {**asdict(self), "errors": errors[:20]}


def target_feature_ids(params: BatchParams) -> list[int]:
    queryset = Feature.objects.filter(is_dead=False)
    if params.source_id is not None:
        queryset = queryset.filter(source_id=params.source_id)
    else:
        queryset = queryset.filter(pk__in=params.feature_ids)
    ids = list(queryset.order_by("source_id", "index").values_list("pk", flat=True))
    return ids[: params.limit] if params.limit else ids


def check_runnable(params: BatchParams, *, user: Any = None) -> None:
    """Refuse, before any job exists, what would fail for every item: an offline explainer with another
    model, or an LLM call with no provider configured (for this user, globally or in the environment).
    Raises ValueError with a message for people."""
    if params.action == "explain" and params.explainer_type in OFFLINE_EXPLAINERS \
            and params.model != LOCAL_MODEL:
        raise ValueError(f"{params.explainer_type} runs with {LOCAL_MODEL} only (not {params.model})")
    model = params.model if params.action == "explain" else params.scorer_model
    needs_llm = params.action == "explain" or any(st != EMBEDDING for st in params.score_types)
    if needs_llm and model != LOCAL_MODEL:
        try:
            resolve_provider(user=user if getattr(user, "pk", None) else None, model=model)
        except ProviderError as exc:
            raise ValueError(exc.reason) from None


def start_autointerp_batch(*, params: BatchParams, requested_by: Any = None, run_now: bool = False) -> Job:
    """Create an AUTOINTERP_BATCH job and enqueue it on the default queue after commit (or run it here
    with `run_now`, for the CLI's --sync). Re-running a finished job's params skips the done work."""
    if (
        params.action == "score"
        and params.scorer_model is None
        and any(st != "eleuther_embedding" for st in params.score_types)
    ):
        params = replace(params, scorer_model=services.default_scorer_model())
    if requested_by is not None and getattr(requested_by, "pk", None) and params.user_id is None:
        params = replace(params, user_id=requested_by.pk)
    check_runnable(params, user=requested_by)
    source = Source.objects.filter(pk=params.source_id).first() if params.source_id else None
    if params.source_id is not None and source is None:
        raise ValueError(f"source {params.source_id} does not exist")
    total = len(target_feature_ids(params))
    what = f"{source}" if source else f"{len(params.feature_ids)} features"
    title = f"{params.action} {what} with {params.explainer_type} / {params.model}"
    with transaction.atomic():
        job = jobs.create_job(
            kind=JobKind.AUTOINTERP_BATCH,
            title=title[:300],
            params=params.as_json(),
            total=total,
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            model_id_ref=source.model_id if source else "",
            source_ref=source.name if source else "",
        )
        if not run_now:
            registry.enqueue(job)
    if run_now:
        if jobs.claim_job(job.pk):  # what the task does with the message
            run_autointerp_job(job.pk)
        job.refresh_from_db()
    return job


def run_autointerp_job(job_id: int, *, backend: ChatBackend | None = None) -> None:
    """Body of the batch task for a claimed job: do the remaining work, then DONE or FAILED."""
    job = Job.objects.get(pk=job_id)
    params = BatchParams.from_dict(job.params)
    with jobs.job_outcome(job_id):
        try:
            result = run_batch(job_id, params, backend=backend)
        except BatchAborted as exc:
            jobs.fail_job(job_id, error=f"stopped: {exc}")
            return
        except ProviderError as exc:  # e.g. the provider key was removed after the job was queued
            jobs.fail_job(job_id, error=f"stopped: {exc.reason}")
            return
        if result.get("failed") and not result.get("succeeded") and not result.get("skipped"):
            # nothing came out of it (one feature from its page, say): FAILED, with the first reason
            reason = result["errors"][0].split(": ", 1)[-1] if result.get("errors") else "every item failed"
            error = f"failed for every item ({result['failed']}): {reason}"
            jobs.fail_job(job_id, error=error, result=result)
            return
        jobs.finish_job(job_id, result=result)


def _explain_items(params: BatchParams, feature_ids: list[int]) -> list[int]:
    done = set(
        Explanation.objects.filter(
            feature_id__in=feature_ids, type_id=params.explainer_type, explanation_model_id=params.model
        ).values_list("feature_id", flat=True)
    )
    return [fid for fid in feature_ids if fid not in done]


def _score_items(params: BatchParams, feature_ids: list[int]) -> tuple[int, list[tuple[int, str]]]:
    """(number of (explanation, score type) pairs, the pairs without a DONE score)."""
    explanations = list(
        Explanation.objects.filter(
            feature_id__in=feature_ids, type_id=params.explainer_type, explanation_model_id=params.model
        )
        .order_by("feature_id", "id")
        .values_list("id", flat=True)
    )
    # a DONE embedding score by an older scorer is stale: it is computed again
    current = ~Q(score_type_id=EMBEDDING) | Q(json_details__scorer_version=SCORER_VERSION)
    done = set(
        ExplanationScore.objects.filter(
            current, explanation_id__in=explanations, status=ScoreStatus.DONE,
            score_type_id__in=params.score_types,
        ).values_list("explanation_id", "score_type_id")
    )
    todo = [(eid, st) for eid in explanations for st in params.score_types if (eid, st) not in done]
    return len(explanations) * len(params.score_types), todo


def run_batch(
    job_id: int,
    params: BatchParams,
    *,
    backend: ChatBackend | None = None,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Do the remaining work of the job; returns counts. Raises BatchAborted on a final provider error and
    JobCancelled (from `progress`) when a cancel was requested."""
    progress = progress or jobs.record_progress
    user = get_user_model().objects.filter(pk=params.user_id).first() if params.user_id else None
    feature_ids = target_feature_ids(params)
    if params.action == "explain":
        items: list[Any] = _explain_items(params, feature_ids)
        total = len(feature_ids)
    else:
        total, items = _score_items(params, feature_ids)
    counts = BatchCounts(done=total - len(items), skipped=total - len(items))
    errors: list[str] = []
    progress(job_id, done=counts.done, total=total)
    needs_llm = params.action == "explain" or any(st != EMBEDDING for st in params.score_types)
    offline = params.explainer_type in OFFLINE_EXPLAINERS
    if params.action == "explain" and offline and params.model != LOCAL_MODEL:
        raise ValueError(f"{params.explainer_type} runs with {LOCAL_MODEL} only")
    model_name = params.model if params.action == "explain" else params.scorer_model
    if needs_llm and backend is None:
        backend = get_backend(model=model_name, user=user)
    runner = _Runner(params, backend, user, counts, errors)
    runner.run(items, lambda: progress(job_id, done=counts.done, total=total))
    if params.action == "explain" and params.embed:
        _embed_new(params, feature_ids)
    progress(job_id, done=counts.done, total=total)
    return counts.as_json(errors)


def _embed_new(params: BatchParams, feature_ids: list[int]) -> None:
    services.embed_explanations(
        explanations=Explanation.objects.filter(
            feature_id__in=feature_ids,
            type_id=params.explainer_type,
            explanation_model_id=params.model,
            embedding__isnull=True,
        ),
        embedder=DEFAULT_EMBEDDER,
    )


class _Runner:
    """Keeps up to 2 x concurrency calls in flight; prepares and stores on the calling thread."""

    def __init__(
        self,
        params: BatchParams,
        backend: ChatBackend | None,
        user: Any,
        counts: BatchCounts,
        errors: list[str],
    ) -> None:
        self.params, self.backend, self.user, self.counts, self.errors = params, backend, user, counts, errors
        self.limiter = RateLimiter(params.rpm)
        self.settings = ExplainerSettings.for_model(params.explainer_type, params.model,
                                                    extra={"use_llm": params.use_llm})
        self._since_report = 0

    def run(self, items: list[Any], report: Callable[[], None]) -> None:
        pool = ThreadPoolExecutor(max_workers=self.params.concurrency, thread_name_prefix="autointerp")
        inflight: dict[Future[Any], Any] = {}
        last_report = time.monotonic()
        try:
            for item in items:
                prepared = self._prepare(item)
                if prepared is None:
                    continue
                inflight[pool.submit(self._call, prepared)] = prepared
                while len(inflight) >= 2 * self.params.concurrency:
                    self._drain(inflight, FIRST_COMPLETED)
                    last_report = self._maybe_report(report, last_report)
            while inflight:
                self._drain(inflight, FIRST_COMPLETED)
                last_report = self._maybe_report(report, last_report)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _maybe_report(self, report: Callable[[], None], last: float) -> float:
        """Write progress (and see cancels) every second or every `concurrency` finished items."""
        self._since_report += 1
        if self._since_report >= self.params.concurrency or time.monotonic() - last >= 1.0:
            self._since_report = 0
            report()
            return time.monotonic()
        return last

    def _prepare(self, item: Any) -> dict[str, Any] | None:
        if self.params.action == "explain":
            feature = Feature.objects.get(pk=item)
            prepared = {"item": item, "evidence": evidence_for_feature(feature)}
            if self.params.score:
                prepared["data"] = scoring_set_for_feature(feature)
            return prepared
        explanation_id, score_type = item
        explanation = Explanation.objects.select_related("feature").get(pk=explanation_id)
        return {
            "item": item,
            "explanation": explanation,
            "score_type": score_type,
            "data": scoring_set_for_feature(explanation.feature),
        }

    def _call(self, prepared: dict[str, Any]) -> Any:
        params = self.params
        if params.action == "explain":

            def fn() -> Any:
                self.counts.requests += 1
                result = explain(
                    prepared["evidence"],
                    explainer_type=params.explainer_type,
                    backend=self.backend,
                    settings=self.settings,
                )  # type: ignore[arg-type]
                if "data" not in prepared:
                    return result, None
                try:
                    return result, score(EMBEDDING, result.text, prepared["data"], None)
                except ScoringFailed as exc:
                    return result, exc
        else:

            def fn() -> Any:
                self.counts.requests += 1
                return score(
                    prepared["score_type"],
                    prepared["explanation"].description,
                    prepared["data"],
                    self.backend,
                )

        return call_with_retries(
            fn, limiter=self.limiter, max_retries=params.max_retries, backoff_s=params.backoff_s
        )

    def _drain(self, inflight: dict[Future[Any], Any], how: str) -> None:
        finished, _ = wait(list(inflight), return_when=how)
        for future in finished:
            prepared = inflight.pop(future)
            self._store(prepared, future)

    def _store(self, prepared: dict[str, Any], future: Future[Any]) -> None:
        try:
            result = future.result()
        except ProviderError as exc:
            if not exc.transient:
                raise BatchAborted(exc.reason) from None
            self._failed(prepared, f"gave up after retries: {exc.reason}")
            return
        except ScoringFailed as exc:
            self._failed(prepared, exc.reason, exc.details)
            if exc.provider_final:
                raise BatchAborted(exc.reason) from None
            return
        except (UnparseableOutput, ValueError) as exc:
            self._failed(prepared, str(exc))
            return
        if self.params.action == "explain":
            result, scored = result
            extra = {"offline": result.details} if result.details else {}
            explanation = services.store_explanation(
                feature_id=prepared["item"],
                text=result.text,
                explainer_type=self.params.explainer_type,
                model=self.params.model,
                settings={**self.settings.as_json(), "batch": True, **extra},
                user=self.user,
                method=result.method,
            )
            if scored is not None and explanation.description == result.text:
                services.store_score(
                    explanation=explanation,
                    score_type=EMBEDDING,
                    scorer_model=None,
                    user=self.user,
                    outcome=None if isinstance(scored, ScoringFailed) else scored,
                    failure=scored.reason if isinstance(scored, ScoringFailed) else "",
                    details=scored.details if isinstance(scored, ScoringFailed) else None,
                )
        else:
            services.store_score(
                explanation=prepared["explanation"],
                score_type=prepared["score_type"],
                scorer_model=self.params.scorer_model,
                user=self.user,
                outcome=result,
            )
        self.counts.succeeded += 1
        self.counts.done += 1

    def _failed(self, prepared: dict[str, Any], reason: str, details: dict[str, Any] | None = None) -> None:
        self.counts.failed += 1
        self.counts.done += 1
        self.errors.append(f"{prepared['item']}: {reason}")
        if self.params.action == "score":
            services.store_score(
                explanation=prepared["explanation"],
                score_type=prepared["score_type"],
                scorer_model=self.params.scorer_model,
                user=self.user,
                failure=reason,
                details=details,
            )
