"""Feature lists: index, create, edit, delete, add/remove features with notes, the list page, embeds."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from features import selectors, services
from features.forms import AddFeatureForm, FeatureListForm, NoteForm
from features.models import Feature, FeatureList, Visibility
from features.views.feature import lists_panel_context
from neuronpedia.api.fields import parse_id


def _visible_list(request: HttpRequest, list_id: int) -> FeatureList:
    feature_list = selectors.get_feature_list(list_id)
    if feature_list.visibility == Visibility.PRIVATE and feature_list.owner_id != request.user.pk:
        raise Http404("list not found")
    return feature_list


def _owned_list(request: HttpRequest, list_id: int) -> FeatureList:
    feature_list = get_object_or_404(FeatureList, pk=list_id)
    if feature_list.owner_id != request.user.pk:
        raise Http404("list not found")  # do not reveal other people's lists
    return feature_list


@require_GET
def list_index(request: HttpRequest) -> HttpResponse:
    mine = selectors.feature_lists_owned_by(request.user) if request.user.is_authenticated else []
    return render(request, "features/list_index.html",
                  {"mine": mine, "public": selectors.public_lists()})


@login_required
@require_http_methods(["GET", "POST"])
def list_create(request: HttpRequest) -> HttpResponse:
    feature = _feature_from_id(request.GET.get("feature") or request.POST.get("feature"))
    region = _region_features(request.GET if request.method == "GET" else request.POST)
    form = FeatureListForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        items = [(f, "") for f in ([feature] if feature else []) + region] or None
        feature_list = services.create_list(
            user=request.user, name=data["name"], description=data["description"],
            default_test_text=data["default_test_text"], items=items)
        FeatureList.objects.filter(pk=feature_list.pk).update(visibility=data["visibility"])
        messages.success(request, f"List “{feature_list.name}” created.")
        return redirect("features:list-detail", feature_list.pk)
    return render(request, "features/list_form.html", {"form": form, "feature": feature, "creating": True,
                                                       "region": region})


MAX_REGION = 500


def _region_features(params: Any) -> list[Feature]:
    """`source=<pk>&indices=1,2,3` (the UMAP's region selection): those features of a public source."""
    source_pk = parse_id(params.get("source", "") or "")
    indices = [i for i in (parse_id(x.strip()) for x in params.get("indices", "").split(",")[:MAX_REGION])
               if i is not None]
    if source_pk is None or not indices:
        return []
    return list(Feature.objects.select_related("source").filter(
        source_id=source_pk, index__in=indices, source__visibility__in=selectors.LISTED).order_by("index"))


def _feature_from_id(raw: str | None) -> Feature | None:
    pk = parse_id(raw or "")
    if pk is not None:
        return Feature.objects.select_related("source").filter(pk=pk).first()
    return None


@require_GET
def list_detail(request: HttpRequest, list_id: int) -> HttpResponse:
    from features.views.search import catalog_json  # noqa: PLC0415

    context = _detail_context(request, _visible_list(request, list_id))
    if context["is_owner"]:
        context["catalog"] = catalog_json()  # the add-a-feature form's model and source pickers
    return render(request, "features/list_detail.html", context)


def _detail_context(request: HttpRequest, feature_list: FeatureList, **extra: Any) -> dict[str, Any]:
    dashboards = selectors.list_dashboards(feature_list)
    items = [(item, dashboards.get(item.feature_id, {})) for item in feature_list.items.all()]
    return {"list": feature_list, "items": items, "is_owner": feature_list.owner_id == request.user.pk,
            "add_form": extra.pop("add_form", None) or AddFeatureForm(), **extra}


@xframe_options_exempt
@require_GET
def list_embed(request: HttpRequest, list_id: int) -> HttpResponse:
    feature_list = _visible_list(request, list_id)
    context = _detail_context(request, feature_list)
    context["is_owner"] = False
    return render(request, "features/list_embed.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def list_edit(request: HttpRequest, list_id: int) -> HttpResponse:
    feature_list = _owned_list(request, list_id)
    form = FeatureListForm(request.POST or None, instance=feature_list)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.update_list(feature_list=feature_list, name=data["name"], description=data["description"],
                             default_test_text=data["default_test_text"])
        FeatureList.objects.filter(pk=feature_list.pk).update(visibility=data["visibility"])
        messages.success(request, "List saved.")
        return redirect("features:list-detail", feature_list.pk)
    return render(request, "features/list_form.html", {"form": form, "list": feature_list})


@login_required
@require_POST
def list_delete(request: HttpRequest, list_id: int) -> HttpResponse:
    services.delete_list(feature_list=_owned_list(request, list_id))
    messages.success(request, "List deleted.")
    return redirect("features:list-index")


@login_required
@require_POST
def list_add(request: HttpRequest, list_id: int) -> HttpResponse:
    """Add a feature: by its id (the feature page's add-to-list menu, answers with that panel) or by
    model/source/index with a note (the list page's form, answers with the items)."""
    feature_list = _owned_list(request, list_id)
    feature = _feature_from_id(request.POST.get("feature"))
    if feature is not None:
        services.add_features_to_list(user=request.user, feature_list=feature_list,
                                      items=[(feature, request.POST.get("note", ""))])
        if request.htmx:
            return render(request, "features/_lists_panel.html",
                          lists_panel_context(request, feature, added=feature_list))
        return redirect(feature.get_absolute_url())
    form = AddFeatureForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        found = (Feature.objects.filter(source__model_id=data["model"], source__name=data["source"],
                                        index=data["index"]).first())
        if found is None:
            form.add_error(None, f"No feature {data['model']}/{data['source']}/{data['index']}.")
        else:
            services.add_features_to_list(user=request.user, feature_list=feature_list,
                                          items=[(found, data["note"])])
            form = AddFeatureForm()
    return _items_response(request, list_id, add_form=form)


@login_required
@require_POST
def add_to_list(request: HttpRequest) -> HttpResponse:
    """The feature page's add-to-list menu: the list comes in the form (`list`)."""
    list_id = parse_id(request.POST.get("list", ""))
    if list_id is None:
        raise Http404("no list chosen")
    return list_add(request, list_id)


def _items_response(request: HttpRequest, list_id: int, **extra: Any) -> HttpResponse:
    context = _detail_context(request, selectors.get_feature_list(list_id), **extra)
    if request.htmx:
        return render(request, "features/list_detail.html#items", context)
    return redirect("features:list-detail", list_id)


@login_required
@require_POST
def list_remove(request: HttpRequest, list_id: int, feature_id: int) -> HttpResponse:
    feature_list = _owned_list(request, list_id)
    services.remove_feature_from_list(feature_list=feature_list,
                                      feature=get_object_or_404(Feature, pk=feature_id))
    return _items_response(request, list_id)


@login_required
@require_POST
def list_note(request: HttpRequest, list_id: int, feature_id: int) -> HttpResponse:
    feature_list = _owned_list(request, list_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        services.edit_list_item(feature_list=feature_list, feature=get_object_or_404(Feature, pk=feature_id),
                                description=form.cleaned_data["note"])
    return _items_response(request, list_id)
