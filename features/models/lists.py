from __future__ import annotations

from django.conf import settings
from django.db import models

from features.models.catalog import Visibility
from features.models.dashboard import Feature


class FeatureList(models.Model):
    """A user's curated collection of features, each with a note."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    default_test_text = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="feature_lists")
    visibility = models.CharField(max_length=10, choices=Visibility.choices,
                                  default=Visibility.UNLISTED)
    features = models.ManyToManyField(Feature, through="ListItem", related_name="lists")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self) -> str:
        return self.name


class ListItem(models.Model):
    feature_list = models.ForeignKey(FeatureList, on_delete=models.CASCADE, related_name="items")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="list_items")
    description = models.TextField(blank=True, help_text="per-item note")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at"]
        constraints = [models.UniqueConstraint(fields=["feature_list", "feature"],
                                               name="listitem_unique_feature")]
        indexes = [models.Index(fields=["feature"])]

    def __str__(self) -> str:
        return f"{self.feature_list_id}:{self.feature_id}"
