"""A stored attribution graph (Neuronpedia's graph JSON, split into columns).

Metadata, prompt and the exact generation parameters are columns; `nodes` is a JSON column (a few
thousand small objects at most, and queryable); `links` (up to tens of thousands of
{source, target, weight}) is stored as zlib-compressed JSON in a bytea column: for 20,000 links that
measured 0.22 MB against 0.43 MB as a TOAST-compressed jsonb column (1.21 MB of JSON), and one
decompress + json.loads is all the download needs (tests/graphs/test_services.py prints the figures).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from features.models import Model, Visibility

slug_validator = RegexValidator(r"^[a-z0-9_-]+$", "lowercase letters, digits, '_' and '-' only")


class GraphStatus(models.TextChoices):
    PENDING = "PENDING", "Generating"
    READY = "READY", "Ready"
    FAILED = "FAILED", "Failed"


class GraphOrigin(models.TextChoices):
    GENERATED = "generated", "Generated here"
    UPLOADED = "uploaded", "Uploaded"


class Graph(models.Model):
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="graphs")
    scan = models.CharField(max_length=128, blank=True,
                            help_text="source set of the transcoders (Neuronpedia's metadata.scan)")
    slug = models.CharField(max_length=128, validators=[slug_validator])
    prompt = models.TextField()
    prompt_tokens = models.JSONField(default=list, blank=True)
    chat = models.BooleanField(default=False, help_text="the prompt went through the chat template")
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="graphs")
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    origin = models.CharField(max_length=16, choices=GraphOrigin.choices, default=GraphOrigin.GENERATED)
    params = models.JSONField(default=dict, blank=True, help_text="the exact generation parameters")
    cache_key = models.CharField(max_length=64, blank=True, db_index=True,
                                 help_text="sha256 of model, source set, prompt, chat and parameters")
    status = models.CharField(max_length=10, choices=GraphStatus.choices, default=GraphStatus.PENDING)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="graphs")
    metadata = models.JSONField(default=dict, blank=True)
    qparams = models.JSONField(default=dict, blank=True)
    nodes = models.JSONField(default=list, blank=True)
    links_z = models.BinaryField(null=True, blank=True, help_text="zlib-compressed JSON list of links")
    n_nodes = models.PositiveIntegerField(default=0)
    n_links = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["model", "slug"], name="graph_unique_model_slug")]
        indexes = [models.Index(fields=["model", "visibility", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.model_id}/graph?slug={self.slug}"

    def get_absolute_url(self) -> str:
        return f"/{self.model_id}/graph?slug={self.slug}"

    # --- links ------------------------------------------------------------------------------------
    @staticmethod
    def pack_links(links: list[dict[str, Any]]) -> bytes:
        return zlib.compress(json.dumps(links, separators=(",", ":")).encode(), 6)

    @property
    def links(self) -> list[dict[str, Any]]:
        if not self.links_z:
            return []
        return json.loads(zlib.decompress(bytes(self.links_z)))

    def set_links(self, links: list[dict[str, Any]]) -> None:
        self.links_z = self.pack_links(links)
        self.n_links = len(links)

    def to_graph_json(self) -> dict[str, Any]:
        """The graph in Neuronpedia's format (what create_graph_files writes, plus our metadata)."""
        return {**self._head(), "nodes": self.nodes, "links": self.links}

    def graph_json_bytes(self) -> bytes:
        """to_graph_json() serialised, with the stored links spliced in as they are (no parse + dump
        of tens of thousands of links per download)."""
        head = json.dumps({**self._head(), "nodes": self.nodes}, separators=(",", ":")).encode()
        links = zlib.decompress(bytes(self.links_z)) if self.links_z else b"[]"
        return head[:-1] + b',"links":' + links + b"}"

    def _head(self) -> dict[str, Any]:
        metadata = dict(self.metadata)
        metadata.update({"slug": self.slug, "scan": metadata.get("scan") or self.scan or self.model_id,
                         "prompt": self.prompt, "prompt_tokens": self.prompt_tokens})
        if self.scan:
            metadata.setdefault("feature_details", {"neuronpedia_source_set": self.scan})
        return {"metadata": metadata, "qParams": self.qparams or {}}
