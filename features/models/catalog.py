"""The catalog: Model -> SourceRelease/SourceSet -> Source, with Neuronpedia's identity scheme.

Identity (shared/reference/neuronpedia.md §1.1): a Model is addressed by its slug (`gpt2-small`), a
SourceSet by (model, name) (`res-jb`), a Source by (model, name) where name = `{layer}-{set}` with an
optional `__{suffix}` (`6-res-jb`, `20-gemmascope-res-16k__l0-32`), and a Feature by
(model, source, index) — URL `/{model}/{source}/{index}`.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from inference_worker.protocol import SOURCE_ID_RE, SourceId, parse_source_id  # the one parser

__all__ = ["SOURCE_ID_RE", "Eval", "InferenceHost", "Model", "Source", "SourceId", "SourceRelease",
           "SourceSet", "Visibility", "parse_source_id"]

SLUG_RE = r"^[a-z0-9][a-z0-9._-]*$"
slug_validator = RegexValidator(SLUG_RE, "lowercase letters, digits, '.', '_' and '-' only")


class Visibility(models.TextChoices):
    PUBLIC = "PUBLIC", "Public"
    UNLISTED = "UNLISTED", "Unlisted"
    PRIVATE = "PRIVATE", "Private"


class Model(models.Model):
    id = models.CharField(primary_key=True, max_length=128, validators=[slug_validator],
                          help_text="Neuronpedia model id, e.g. gpt2-small")
    display_name = models.CharField(max_length=200, blank=True)
    display_name_short = models.CharField(max_length=100, blank=True)
    owner = models.CharField(max_length=200, blank=True)
    website = models.URLField(blank=True)
    layers = models.PositiveIntegerField()
    neurons_per_layer = models.PositiveIntegerField(default=0)
    dimension = models.PositiveIntegerField(
        null=True, blank=True, help_text="d_model; uploaded vectors must match it (null: unknown)")
    tlens_id = models.CharField(max_length=200, blank=True, help_text="TransformerLens name")
    hf_id = models.CharField(max_length=200, blank=True, help_text="Hugging Face repo id")
    open_router_id = models.CharField(max_length=200, blank=True)
    instruct = models.BooleanField(default=False)
    thinking = models.BooleanField(default=False)
    inference_enabled = models.BooleanField(default=True)
    visibility = models.CharField(max_length=10, choices=Visibility.choices,
                                  default=Visibility.PUBLIC)
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    default_source_set_name = models.CharField(max_length=128, blank=True)
    default_source_name = models.CharField(max_length=160, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        # layers 0 = unknown (Neuronpedia's SAEDashboard converter writes it)
        constraints = [models.CheckConstraint(condition=models.Q(layers__gte=0),
                                              name="model_layers_not_negative"),
                       models.CheckConstraint(condition=models.Q(dimension__gt=0),
                                              name="model_dimension_positive")]

    def __str__(self) -> str:
        return self.id


class SourceRelease(models.Model):
    name = models.CharField(primary_key=True, max_length=160, validators=[slug_validator])
    description = models.TextField(blank=True)
    description_short = models.CharField(max_length=300, blank=True)
    urls = ArrayField(models.URLField(max_length=500), default=list, blank=True)
    creator_name = models.CharField(max_length=200, blank=True)
    creator_name_short = models.CharField(max_length=100, blank=True)
    featured = models.BooleanField(default=False)
    default_source_set_name = models.CharField(max_length=128, blank=True)
    default_source_name = models.CharField(max_length=160, blank=True)
    default_umap_source_names = ArrayField(models.CharField(max_length=160), default=list,
                                           blank=True)
    visibility = models.CharField(max_length=10, choices=Visibility.choices,
                                  default=Visibility.PUBLIC)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SourceSet(models.Model):
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="source_sets")
    name = models.CharField(max_length=128, validators=[slug_validator],
                            help_text="e.g. res-jb (a family of sources across layers)")
    release = models.ForeignKey(SourceRelease, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="source_sets")
    description = models.TextField(blank=True)
    type = models.CharField(max_length=64, blank=True, help_text="e.g. sae, transcoder, vector")
    creator_name = models.CharField(max_length=200, blank=True)
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    urls = ArrayField(models.URLField(max_length=500), default=list, blank=True)
    visibility = models.CharField(max_length=10, choices=Visibility.choices,
                                  default=Visibility.PUBLIC)
    has_dashboards = models.BooleanField(default=True)
    allow_inference_search = models.BooleanField(default=True)
    show_umap = models.BooleanField(default=True)
    show_dfa = models.BooleanField(default=False)
    show_correlated = models.BooleanField(default=False)
    default_range = models.PositiveSmallIntegerField(default=1)
    default_show_breaks = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id", "name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"],
                                               name="sourceset_unique_per_model")]

    def __str__(self) -> str:
        return f"{self.model_id}/{self.name}"


class Source(models.Model):
    """One SAE / transcoder / vector basis at one hook. `name` is Neuronpedia's source id."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="sources")
    source_set = models.ForeignKey(SourceSet, on_delete=models.CASCADE, related_name="sources")
    name = models.CharField(max_length=160, help_text="Neuronpedia source id, e.g. 6-res-jb")
    layer = models.PositiveIntegerField()
    hook_name = models.CharField(max_length=200, blank=True,
                                 help_text="e.g. blocks.6.hook_resid_pre")
    num_features = models.PositiveIntegerField(null=True, blank=True, help_text="d_sae")
    has_dashboards = models.BooleanField(default=False)
    inference_enabled = models.BooleanField(default=True)
    saelens_release = models.CharField(max_length=200, blank=True)
    saelens_sae_id = models.CharField(max_length=300, blank=True)
    saelens_config = models.JSONField(default=dict, blank=True)
    local_path = models.CharField(max_length=500, blank=True,
                                  help_text="folder with cfg.json + sae_weights.safetensors")
    hf_repo_id = models.CharField(max_length=200, blank=True)
    hf_folder_id = models.CharField(max_length=300, blank=True)
    dataset = models.CharField(max_length=300, blank=True)
    num_prompts = models.PositiveIntegerField(null=True, blank=True)
    num_tokens_in_prompt = models.PositiveIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True)
    has_umap = models.BooleanField(default=False)
    has_umap_clusters = models.BooleanField(default=False)
    cos_sim_match_model_id = models.CharField(max_length=128, blank=True)
    cos_sim_match_source_name = models.CharField(max_length=160, blank=True)
    visibility = models.CharField(max_length=10, choices=Visibility.choices,
                                  default=Visibility.PUBLIC)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_id", "layer", "name"]
        constraints = [
            models.UniqueConstraint(fields=["model", "name"], name="source_unique_per_model"),
            models.CheckConstraint(condition=models.Q(name__regex=r"^[0-9]+-"),
                                   name="source_name_starts_with_layer"),
        ]
        indexes = [models.Index(fields=["source_set", "layer"])]

    def __str__(self) -> str:
        return f"{self.model_id}/{self.name}"

    def clean(self) -> None:
        try:
            parsed = parse_source_id(self.name)
        except ValueError as exc:
            raise ValidationError({"name": str(exc)}) from exc
        if parsed.layer != self.layer:
            raise ValidationError({"layer": f"source {self.name} implies layer {parsed.layer}"})
        if self.source_set_id and parsed.set_name != self.source_set.name:
            raise ValidationError(
                {"name": f"source {self.name} does not belong to set {self.source_set.name}"})
        if self.source_set_id and self.source_set.model_id != self.model_id:
            raise ValidationError({"source_set": "the source set belongs to another model"})


class Eval(models.Model):
    """Evaluation results of a source (L0, explained variance, CE loss recovered, SAEBench...)."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="evals")
    type = models.CharField(max_length=100, help_text="e.g. core, saebench_sparse_probing")
    output = models.JSONField(default=dict)
    detailed = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "type"],
                                               name="eval_unique_per_source_type")]

    def __str__(self) -> str:
        return f"{self.source} {self.type}"


class InferenceHost(models.Model):
    """A running inference worker, registered with a heartbeat, and the sources it serves."""

    name = models.CharField(max_length=200, unique=True, help_text="worker node name")
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="inference_hosts")
    queue = models.CharField(max_length=200)
    device = models.CharField(max_length=40, blank=True)
    dtype = models.CharField(max_length=20, blank=True)
    sources = models.ManyToManyField(Source, blank=True, related_name="inference_hosts")
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(db_index=True)
    info = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["model", "-heartbeat_at"])]

    def __str__(self) -> str:
        return self.name
