"""Cross-source similar features (issue 18): for a feature, the features of another source of the same model
whose decoder directions are closest (cosine similarity), computed by `compute_similar_features`."""

from __future__ import annotations

from django.db import models

from features.models.catalog import Source
from features.models.dashboard import Feature
from features.models.fields import int_array, real_array


class CrossSourceSimilarity(models.Model):
    """Top-k decoder cos-sim neighbours of `feature` among the features of `other_source` (best first)."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="cross_similar")
    other_source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="+")
    indices = int_array()
    values = real_array()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feature", "other_source"],
                                               name="crosssim_unique_feature_source")]

    def __str__(self) -> str:
        return f"{self.feature_id} ~ {self.other_source_id}"
