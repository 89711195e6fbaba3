"""`{% graphs_banner %}` for the home page: "graphs are coming" while the demo transcoders train, then
a link to the graph page."""

from __future__ import annotations

from typing import Any

from django import template

from features.models import SourceSet
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.lib.jobs import JobStatus

register = template.Library()


@register.inclusion_tag("graphs/_home_banner.html")
def graphs_banner() -> dict[str, Any]:
    training = Job.objects.filter(kind=JobKind.TRAIN_TRANSCODERS).order_by("-created_at").first()
    ready = (SourceSet.objects.filter(type="transcoder", sources__isnull=False)
             .select_related("model").distinct().order_by("model_id", "name").first())
    if training is not None and training.status == JobStatus.DONE:
        training = None
    return {"ready": ready if training is None else None, "training": training}
