from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from features import selectors
from features.models import Model


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    models = selectors.public_models().prefetch_related("source_sets")
    return render(request, "features/home.html", {"models": models})


@require_GET
def model_page(request: HttpRequest, model_id: str) -> HttpResponse:
    model = get_object_or_404(Model, id=model_id)
    return render(request, "features/model_detail.html",
                  {"model": model, "source_sets": selectors.source_sets_for_model(model)})


@require_GET
def source_page(request: HttpRequest, model_id: str, source_name: str) -> HttpResponse:
    source = selectors.get_source(model_id, source_name)
    page = Paginator(selectors.features_for_source(source), 100).get_page(request.GET.get("page"))
    return render(request, "features/source_detail.html", {"source": source, "page": page})


@require_GET
def feature_page(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    feature = selectors.get_feature(model_id, source_name, index)
    return render(request, "features/feature_detail.html", {"feature": feature})
