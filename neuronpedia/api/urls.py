"""The public REST API under /api (Neuronpedia-compatible paths) and its OpenAPI schema and docs."""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from features.api import views as features_api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # features, activations, explanations (issue 8)
    path("feature/upload-batch", features_api.feature_upload_batch, name="api-feature-upload-batch"),
    path("feature/<str:model_id>/<str:source_name>/<str:index>", features_api.feature_detail,
         name="api-feature"),
    path("features", features_api.features_batch, name="api-features"),
    path("activation/upload-batch", features_api.activation_upload_batch,
         name="api-activation-upload-batch"),
    path("activation/get", features_api.activation_get, name="api-activation-get"),
    path("explanation/new", features_api.explanation_new, name="api-explanation-new"),
    # our numeric ids, or Neuronpedia's cuids for imported explanations; never a word like `search`
    re_path(r"^explanation/(?P<explanation_id>(?:[0-9]+|c[a-z0-9]{20,32}))$", features_api.explanation_detail,
            name="api-explanation"),
    # lists
    path("list/new", features_api.list_new, name="api-list-new"),
    path("list/new-with-features", features_api.list_new_with_features, name="api-list-new-with-features"),
    path("list/get", features_api.list_get, name="api-list-get"),
    path("list/list", features_api.list_list, name="api-list-list"),
    path("list/update", features_api.list_update, name="api-list-update"),
    path("list/delete", features_api.list_delete, name="api-list-delete"),
    path("list/add-features", features_api.list_add_features, name="api-list-add-features"),
    path("list/remove", features_api.list_remove, name="api-list-remove"),
    path("list/edit-feature", features_api.list_edit_feature, name="api-list-edit-feature"),
    # vectors
    path("vector/new", features_api.vector_new, name="api-vector-new"),
    path("vector/get", features_api.vector_get, name="api-vector-get"),
    path("vector/delete", features_api.vector_delete, name="api-vector-delete"),
    path("vector/list-owned", features_api.vector_list_owned, name="api-vector-list-owned"),
    # bring your own models and source sets
    path("model/new", features_api.model_new, name="api-model-new"),
    path("source-set/new", features_api.source_set_new, name="api-source-set-new"),
    path("source-set/<str:model_id>/<str:name>", features_api.source_set_detail, name="api-source-set"),
]

# live inference, steering, explanation search and autointerp (issue 8). A trailing slash is accepted:
# the official SDK posts to `search-all/`, `steer/`, `steer-chat/` and `search-topk-by-token/`.
from autointerp import api as autointerp_api  # noqa: E402
from inference.api import views as inference_views  # noqa: E402
from steering.api import views as steering_api  # noqa: E402

urlpatterns += [
    re_path(r"^activation/new(?:/)?$", inference_views.activation_new, name="api-activation-new"),
    re_path(r"^activation/source(?:/)?$", inference_views.activation_source, name="api-activation-source"),
    re_path(r"^search-all(?:/)?$", inference_views.search_all, name="api-search-all"),
    re_path(r"^search-topk-by-token(?:/)?$", inference_views.search_topk_by_token,
            name="api-search-topk-by-token"),
    re_path(r"^steer(?:/)?$", steering_api.steer, name="api-steer"),
    re_path(r"^steer-chat(?:/)?$", steering_api.steer_chat, name="api-steer-chat"),
    re_path(r"^steer-load(?:/)?$", steering_api.steer_load, name="api-steer-load"),
    re_path(r"^explanation/search-all(?:/)?$", autointerp_api.explanation_search_all,
            name="api-explanation-search-all"),
    re_path(r"^explanation/search(?:/)?$", autointerp_api.explanation_search, name="api-explanation-search"),
    re_path(r"^explanation/search-model(?:/)?$", autointerp_api.explanation_search_model,
            name="api-explanation-search-model"),
    re_path(r"^explanation/search-release(?:/)?$", autointerp_api.explanation_search_release,
            name="api-explanation-search-release"),
    re_path(r"^explanation/generate(?:/)?$", autointerp_api.explanation_generate,
            name="api-explanation-generate"),
    re_path(r"^explanation/score(?:/)?$", autointerp_api.explanation_score, name="api-explanation-score"),
    re_path(r"^explanation/(?P<explanation_id>[0-9]+)/delete(?:/)?$", autointerp_api.explanation_delete,
            name="api-explanation-delete"),
]

# last: every other path under /api answers a JSON 404 (neuronpedia.api_errors.not_found)
from neuronpedia.api_errors import not_found  # noqa: E402

urlpatterns += [re_path(r"^(?P<rest>.*)$", not_found, name="api-not-found")]
