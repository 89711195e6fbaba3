"""Features and their dashboard data: the wide Feature row and its top-activating examples."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from features.models.catalog import Source
from features.models.fields import RealField, int_array, real_array, text_array


class Feature(models.Model):
    """One feature (latent / neuron / user vector) of a source.

    Dashboard statistics are stored on the row (as Neuronpedia does) so a feature page is one
    indexed lookup on (source, index) plus one index range scan over its activations.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="features")
    index = models.PositiveIntegerField()
    # dashboard statistics
    max_act_approx = RealField(null=True, blank=True)
    frac_nonzero = RealField(null=True, blank=True, help_text="activation density")
    is_dead = models.BooleanField(default=False, help_text="never activated in the dataset")
    freq_hist_data_bar_heights = real_array(null=True)
    freq_hist_data_bar_values = real_array(null=True)
    logits_hist_data_bar_heights = real_array(null=True)
    logits_hist_data_bar_values = real_array(null=True)
    pos_str = text_array(null=True)
    pos_values = real_array(null=True)
    neg_str = text_array(null=True)
    neg_values = real_array(null=True)
    topk_cos_sim_indices = int_array(null=True)
    topk_cos_sim_values = real_array(null=True)
    neuron_alignment_indices = int_array(null=True)
    neuron_alignment_values = real_array(null=True)
    neuron_alignment_l1 = real_array(null=True)
    correlated_neurons_indices = int_array(null=True)
    correlated_neurons_pearson = real_array(null=True)
    correlated_neurons_l1 = real_array(null=True)
    correlated_features_indices = int_array(null=True)
    correlated_features_pearson = real_array(null=True)
    correlated_features_l1 = real_array(null=True)
    decoder_weights_dist = real_array(null=True)
    umap_x = RealField(null=True, blank=True)
    umap_y = RealField(null=True, blank=True)
    umap_cluster = models.IntegerField(null=True, blank=True)
    umap_log_feature_sparsity = RealField(null=True, blank=True)
    # raw vectors (user vectors, probes)
    has_vector = models.BooleanField(default=False)
    vector = real_array(null=True)
    vector_label = models.CharField(max_length=500, blank=True, null=True)
    vector_default_steer_strength = RealField(null=True, blank=True)
    hook_name = models.CharField(max_length=200, blank=True, null=True)
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    # Neuronpedia's ids, kept from an import (and written back by an export): `creatorId` of the row and its
    # `sourceSetName` (nullable there; null stays null).
    creator_external_id = models.CharField(max_length=100, null=True, blank=True)
    source_set_name = models.CharField(max_length=128, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source_id", "index"]
        constraints = [models.UniqueConstraint(fields=["source", "index"],
                                               name="feature_unique_index_per_source")]
        indexes = [
            models.Index(fields=["source", "-max_act_approx"], name="feature_source_maxact"),
            models.Index(fields=["creator", "has_vector"], name="feature_creator_vector",
                         condition=models.Q(has_vector=True)),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.index}"

    def get_absolute_url(self) -> str:
        return f"/{self.source.model_id}/{self.source.name}/{self.index}"

    @property
    def model_id(self) -> str:
        return self.source.model_id

    @property
    def np_creator_id(self) -> str | None:
        """Our creator's id, else Neuronpedia's creatorId kept from an import."""
        return str(self.creator_id) if self.creator_id is not None else self.creator_external_id

    @property
    def pos_pairs(self) -> list[tuple[str, float]]:
        return list(zip(self.pos_str or (), self.pos_values or (), strict=False))

    @property
    def neg_pairs(self) -> list[tuple[str, float]]:
        return list(zip(self.neg_str or (), self.neg_values or (), strict=False))


class Activation(models.Model):
    """One top-activating text example of a feature, with per-token values and its quantile bin.

    Top group rows have bin_min = -1, bin_max = max, bin_contains = -1 (Neuronpedia's convention);
    interval rows carry their bin's range and the share of activations it holds.
    """

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="activations")
    external_id = models.CharField(max_length=40, blank=True,
                                   help_text="id in Neuronpedia's export (for round trips)")
    tokens = text_array()
    values = real_array()
    max_value = RealField()
    max_value_token_index = models.PositiveIntegerField()
    min_value = RealField(null=True, blank=True)
    bin_min = RealField(null=True, blank=True)
    bin_max = RealField(null=True, blank=True)
    bin_contains = RealField(null=True, blank=True)
    qualifying_token_index = models.IntegerField(null=True, blank=True)
    data_source = models.CharField(max_length=300, blank=True, null=True)
    data_index = models.BigIntegerField(null=True, blank=True)
    dfa_values = real_array(null=True)
    dfa_target_index = models.IntegerField(null=True, blank=True)
    dfa_max_value = RealField(null=True, blank=True)
    # the rest of Neuronpedia's Activation columns, kept so a round trip loses nothing
    loss_values = real_array(null=True)
    logit_contributions = models.TextField(null=True, blank=True)
    z_k_indices = int_array(null=True)
    z_q_indices = int_array(null=True)
    z_values = real_array(null=True)
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    creator_external_id = models.CharField(max_length=100, null=True, blank=True,
                                           help_text="Neuronpedia's creatorId of the row")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["feature", "-max_value"], name="activation_feature_max")]
        constraints = [
            models.CheckConstraint(condition=models.Q(values__len=models.F("tokens__len")),
                                   name="activation_values_match_tokens"),
            models.CheckConstraint(
                condition=models.Q(max_value_token_index__lt=models.F("tokens__len"))
                | models.Q(tokens__len=0),
                name="activation_max_index_in_tokens"),
        ]

    def __str__(self) -> str:
        return f"activation {self.pk} of {self.feature_id}"

    @property
    def np_id(self) -> str:
        """Neuronpedia's id of an imported row (what its API calls `id`), else ours."""
        return self.external_id or str(self.pk)

    @property
    def np_creator_id(self) -> str | None:
        return str(self.creator_id) if self.creator_id is not None else self.creator_external_id

    @property
    def token_pairs(self) -> list[tuple[str, float, float]]:
        """(token, value, intensity 0..1 relative to this example's max) for colouring."""
        top = self.max_value if self.max_value and self.max_value > 0 else 1.0
        return [(tok, val, max(0.0, min(1.0, val / top)))
                for tok, val in zip(self.tokens, self.values, strict=False)]

