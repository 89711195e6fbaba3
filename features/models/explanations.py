"""Explanations (labels) of features, their catalogs, scores and embeddings (pgvector).

An explanation's embedding is stored with the name of the embedder that made it. Embedders have
different widths (all-MiniLM-L6-v2: 384, OpenAI text-embedding-3-large at 256), so the column is an
untyped `vector` and each known embedder gets a partial HNSW index on `embedding::vector(d)`; a query is
embedded with the embedder of the rows it searches (see features/embedders.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from pgvector.django import VectorField

from features.models.catalog import Source
from features.models.dashboard import Feature


class ExplanationType(models.Model):
    """An explanation method, e.g. `oai_token-act-pair`, `np_max-act-logits`, `human`."""

    name = models.CharField(primary_key=True, max_length=100)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    is_attention = models.BooleanField(default=False)
    settings = models.JSONField(default=dict, blank=True)
    url = models.URLField(blank=True)
    featured = models.BooleanField(default=False)
    creator_name = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.name


class ExplanationModel(models.Model):
    """The LLM that wrote explanations, e.g. `gpt-4o-mini`, `smollm2-135m-instruct`."""

    name = models.CharField(primary_key=True, max_length=200)
    display_name = models.CharField(max_length=200, blank=True)
    open_router_model_id = models.CharField(max_length=200, blank=True)
    featured = models.BooleanField(default=False)
    creator_name = models.CharField(max_length=200, blank=True)
    url = models.URLField(blank=True)

    def __str__(self) -> str:
        return self.name


class Explanation(models.Model):
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="explanations")
    # The feature's source, copied onto the row so semantic search filters scope and visibility on the
    # explanation itself while pgvector walks its index, without a join per candidate (autointerp/search.py).
    # Always set by a database trigger from `feature` (migration 0006), on every INSERT (ORM, COPY, raw SQL)
    # and on UPDATE of feature_id; NOT NULL in the database. Nothing else writes it, so instances the ORM
    # has just created still hold None until reloaded. No FK constraint: deletes go through
    # `feature` (CASCADE). Indexed together with `embedder` for small scoped searches.
    source = models.ForeignKey(Source, null=True, blank=True, editable=False, on_delete=models.DO_NOTHING,
                               db_constraint=False, db_index=False, related_name="+")
    external_id = models.CharField(max_length=40, blank=True)
    description = models.TextField()
    type = models.ForeignKey(ExplanationType, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="explanations")
    explanation_model = models.ForeignKey(ExplanationModel, null=True, blank=True,
                                          on_delete=models.PROTECT, related_name="explanations")
    explainer_settings = models.JSONField(default=dict, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="explanations")
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    author_external_id = models.CharField(max_length=100, null=True, blank=True,
                                          help_text="Neuronpedia's authorId of an imported explanation")
    embedding = VectorField(null=True, blank=True)
    embedder = models.CharField(max_length=100, blank=True, db_index=True)
    # How the text was made: "token-analysis" (the offline explainer's deterministic analysis), "llm",
    # "human", or "" (unknown, e.g. imported). Shown next to every explanation.
    method = models.CharField(max_length=32, blank=True)
    # The headline score shown with the explanation (and used by search to filter / rank): by default
    # `eleuther_embedding` on held-out examples. Kept in step with that ExplanationScore row by autointerp.
    score = models.FloatField(null=True, blank=True)
    score_type_name = models.CharField(max_length=100, blank=True)
    score_v1 = models.FloatField(default=0)
    score_v2 = models.FloatField(null=True, blank=True)
    umap_x = models.FloatField(null=True, blank=True)
    umap_y = models.FloatField(null=True, blank=True)
    umap_cluster = models.IntegerField(null=True, blank=True)
    umap_log_feature_sparsity = models.FloatField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["feature", "-score_v2", "-score_v1"],
                                name="explanation_feature_score"),
                   # small scoped searches read their rows through this, exactly (autointerp/search.py)
                   models.Index(fields=["source", "embedder"], name="explanation_source_embedder")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(embedding__isnull=True) | ~models.Q(embedder=""),
                name="explanation_embedding_has_embedder"),
        ]

    def __str__(self) -> str:
        return self.description[:80]

    @property
    def np_id(self) -> str:
        """Neuronpedia's id of an imported explanation (what its API calls `id`), else ours."""
        return self.external_id or str(self.pk)

    @property
    def np_author_id(self) -> str | None:
        return str(self.author_id) if self.author_id is not None else self.author_external_id


class ExplanationScoreType(models.Model):
    """A scoring method, e.g. `eleuther_fuzz`, `eleuther_recall`, `eleuther_embedding`."""

    name = models.CharField(primary_key=True, max_length=100)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    scorer_model = models.CharField(max_length=200, blank=True)
    is_attention = models.BooleanField(default=False)
    settings = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name


class ExplanationScoreModel(models.Model):
    name = models.CharField(primary_key=True, max_length=200)
    display_name = models.CharField(max_length=200, blank=True)
    open_router_model_id = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.name


class ScoreStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"


class ExplanationScore(models.Model):
    """One score of one explanation by one (method, scorer model). A FAILED score can be retried:
    the row is reused (unique key), never a silent low value (Neuronpedia issue #77)."""

    explanation = models.ForeignKey(Explanation, on_delete=models.CASCADE, related_name="scores")
    score_type = models.ForeignKey(ExplanationScoreType, on_delete=models.PROTECT,
                                   related_name="scores")
    score_model = models.ForeignKey(ExplanationScoreModel, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="scores")
    status = models.CharField(max_length=10, choices=ScoreStatus.choices,
                              default=ScoreStatus.PENDING)
    value = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    json_details = models.JSONField(default=dict, blank=True, help_text="per-example breakdown")
    initiated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["explanation", "score_type", "score_model"],
                                    name="score_unique_per_method_model", nulls_distinct=False),
            models.CheckConstraint(
                condition=~models.Q(status="DONE") | models.Q(value__isnull=False),
                name="score_done_has_value"),
        ]

    def __str__(self) -> str:
        return f"{self.score_type_id}={self.value}"
