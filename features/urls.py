from __future__ import annotations

from django.urls import path, re_path

from features.views import browse, catalog, feature, lists, search

# Other apps' pages about features share this namespace: neuronpedia/urls.py puts their patterns
# (`feature_urlpatterns` of autointerp.urls, inference.urls, neuronpedia.jobs.urls) before these, whose
# catch-alls come last.
app_name = "features"
urlpatterns = [
    path("", catalog.home, name="home"),
    path("jump", catalog.jump, name="jump"),
    path("random", catalog.random_feature, name="random"),
    # search (the pages: autointerp.urls and inference.urls, in this namespace too)
    path("ui/feature-labels", search.feature_labels, name="feature-labels"),
    # SAEBench-style comparison of every source's evals (issue 18)
    path("compare", browse.compare, name="compare"),
    # lists
    path("lists/", lists.list_index, name="list-index"),
    path("lists/new", lists.list_create, name="list-create"),
    path("lists/add-feature", lists.add_to_list, name="list-add-feature"),
    path("lists/<int:list_id>/", lists.list_detail, name="list-detail"),
    path("lists/<int:list_id>/edit", lists.list_edit, name="list-edit"),
    path("lists/<int:list_id>/delete", lists.list_delete, name="list-delete"),
    path("lists/<int:list_id>/add", lists.list_add, name="list-add"),
    path("lists/<int:list_id>/remove/<int:feature_id>", lists.list_remove, name="list-remove"),
    path("lists/<int:list_id>/note/<int:feature_id>", lists.list_note, name="list-note"),
    # embeds (chrome-less, may be framed)
    path("embed/list/<int:list_id>", lists.list_embed, name="list-embed"),
    path("embed/<slug:model_id>/<str:source_name>/<int:index>", browse.feature_embed, name="feature-embed"),
    # catalog
    path("<slug:model_id>/", browse.model_page, name="model"),
    path("<slug:model_id>/similar-features/compute", feature.compute_similar, name="similar-compute"),
    path("<slug:model_id>/random", catalog.random_feature, name="model-random"),
    # `/{model}/{set}/`: a name that cannot be a source's (those start with `{layer}-`) -> the set page
    re_path(r"^(?P<model_id>[-a-zA-Z0-9_.]+)/(?P<name>(?![0-9]+-)[^/]+)/$", browse.source_set_slash,
            name="source-set-slash"),
    path("<slug:model_id>/<str:source_name>/", catalog.source_page, name="source"),
    path("<slug:model_id>/<str:source_name>/random", catalog.random_feature, name="source-random"),
    path("<slug:model_id>/<str:source_name>/<int:index>", browse.feature_page, name="feature"),
    re_path(r"^(?P<model_id>[-a-zA-Z0-9_]+)/(?P<source_name>[^/]+)/(?P<index>[0-9]+)/(?P<direction>prev|next)$",
            catalog.neighbour, name="feature-neighbour"),
    path("<slug:model_id>/<str:source_name>/<int:index>/panel/lists", feature.lists_panel,
         name="feature-lists"),
    path("<slug:model_id>/<str:source_name>/<int:index>/panel/explanations", feature.explanations_panel,
         name="feature-explanations"),
    path("<slug:model_id>/<str:source_name>/<int:index>/panel/extras", browse.feature_extras,
         name="feature-extras"),
    # catch-alls last (issue 18): `/{model}/{set}` (else a source: redirect) and `/{release}` (else a model:
    # redirect); anything else falls back to what APPEND_SLASH would do (features/views/browse.py)
    path("<str:model_id>/<str:name>", browse.source_set_page, name="source-set"),
    path("<str:name>", browse.release_or_model, name="release"),
]
