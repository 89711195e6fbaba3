"""Request and response shapes of the public API, in Neuronpedia's wire names (camelCase, plus its legacy
snake_case dashboard fields). Ids are strings on the wire, as Neuronpedia's are; indexes are accepted as
integers or digit strings and returned as strings."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from features.models import (
    Activation,
    Explanation,
    ExplanationScore,
    Feature,
    FeatureList,
    ListItem,
    Model,
    Source,
    SourceSet,
)
from features.services import VECTOR_HOOK_TYPES
from neuronpedia.api import fields
from neuronpedia.api.fields import IdField, IndexField, index_schema

MAX_UPLOAD_INDEX = 10_000_000
MAX_FEATURES_PER_UPLOAD = 128
MAX_FEATURES_PER_BATCH_GET = 128
MAX_LIST_FEATURES_PER_CALL = 100
MAX_LOGITS = 20
MAX_EXPLANATION_CHARS = 512
MAX_TOKENS = 1024
MAX_ACTIVATIONS_PER_CALL = 1000
MAX_VECTOR_LENGTH = 24576
STEER_STRENGTH_RANGE = (-300.0, 300.0)
FLOAT_BOUND = 1e30  # activation values are stored as 4-byte reals
REAL_MIN = 1.1754943508222875e-38  # the smallest normal 4-byte real
MODEL_ID_RE = re.compile(r"^[a-z][a-z0-9.-]*[a-z0-9]$|^[a-z]$")
WEB_URL_RE = r"^https?://[^\s/?#]+[^\s]*$"
SOURCE_SET_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$")


# --- Input fields --------------------------------------------------------------------------------

@extend_schema_field(index_schema(MAX_UPLOAD_INDEX))
class UploadIndexField(IndexField):
    """The index of an uploaded feature (at most MAX_UPLOAD_INDEX)."""

    max_index = MAX_UPLOAD_INDEX


class RealField(fields.FloatField):
    """A number stored as a 4-byte real: magnitudes below the smallest normal real (1e-300, say) become 0,
    where PostgreSQL would refuse them ("value out of range: underflow")."""

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        return 0.0 if abs(value) < REAL_MIN else value


def _float(**kwargs: Any) -> fields.FloatField:
    return RealField(min_value=-FLOAT_BOUND, max_value=FLOAT_BOUND, **kwargs)


def _token() -> fields.CharField:
    return fields.CharField(allow_blank=True, trim_whitespace=False, max_length=2000)


def _slug(**kwargs: Any) -> fields.CharField:
    return fields.CharField(max_length=160, **kwargs)


def _web_url(**kwargs: Any) -> fields.RegexField:
    """An http(s) link shown on the model / source-set pages: the scheme, a host, no whitespace (a pattern
    the schema states exactly, rather than Django's URLValidator, whose host rules a schema cannot say)."""
    return fields.RegexField(WEB_URL_RE, required=False, allow_null=True, allow_blank=True, error_messages={
        "invalid": "must be an http:// or https:// link without spaces"}, **kwargs)


# --- Input serializers ---------------------------------------------------------------------------

class FeatureKeyInSerializer(serializers.Serializer):
    modelId = _slug()
    layer = _slug(help_text="source id, e.g. 6-res-jb")
    index = IndexField()
    maxActsToReturn = fields.IntegerField(required=False, min_value=0, max_value=10_000)


class FeatureRefInSerializer(serializers.Serializer):
    modelId = _slug()
    source = _slug(help_text="source id, e.g. 6-res-jb")
    index = IndexField()


class LogitInSerializer(serializers.Serializer):
    token = _token()
    value = _float()


class ActivationInSerializer(serializers.Serializer):
    tokens = serializers.ListField(child=_token(), min_length=1, max_length=MAX_TOKENS)
    values = serializers.ListField(child=_float(), min_length=1, max_length=MAX_TOKENS)
    quantileMax = RealField(required=False, allow_null=True, min_value=-99_999_999, max_value=99_999_999)
    quantileMin = RealField(required=False, allow_null=True, min_value=-99_999_999, max_value=99_999_999)
    quantileFraction = RealField(required=False, allow_null=True, min_value=0, max_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if len(attrs["tokens"]) != len(attrs["values"]):
            raise serializers.ValidationError(
                f"tokens ({len(attrs['tokens'])}) and values ({len(attrs['values'])}) differ in length")
        return attrs


class ExplanationUploadInSerializer(serializers.Serializer):
    text = fields.CharField(max_length=MAX_EXPLANATION_CHARS)
    methodName = fields.CharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    modelName = fields.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for key in ("methodName", "modelName"):
            attrs[key] = (attrs.get(key) or "").lower() or None
        return attrs


class FeatureUploadInSerializer(serializers.Serializer):
    index = UploadIndexField()
    density = RealField(required=False, allow_null=True, min_value=0, max_value=1)
    topLogits = LogitInSerializer(many=True, required=False, allow_null=True, max_length=MAX_LOGITS)
    bottomLogits = LogitInSerializer(many=True, required=False, allow_null=True, max_length=MAX_LOGITS)
    explanations = ExplanationUploadInSerializer(many=True, required=False, allow_null=True,
                                                 max_length=100)
    activations = ActivationInSerializer(many=True, required=False, allow_null=True,
                                         max_length=MAX_ACTIVATIONS_PER_CALL)


class FeatureUploadBatchInSerializer(serializers.Serializer):
    modelId = _slug()
    source = _slug()
    features = FeatureUploadInSerializer(many=True, min_length=1, max_length=MAX_FEATURES_PER_UPLOAD)


class ActivationUploadBatchInSerializer(serializers.Serializer):
    modelId = _slug()
    source = _slug()
    index = IndexField()
    activations = ActivationInSerializer(many=True, min_length=1, max_length=MAX_ACTIVATIONS_PER_CALL)


class ExplanationFeatureInSerializer(serializers.Serializer):
    modelId = _slug()
    layer = _slug()
    index = IndexField()
    explanation = fields.CharField(max_length=MAX_EXPLANATION_CHARS)
    explanationModel = fields.CharField(required=False, allow_blank=True, allow_null=True,
                                        max_length=200)


class ExplanationNewInSerializer(serializers.Serializer):
    feature = ExplanationFeatureInSerializer()


class ListFeatureInSerializer(serializers.Serializer):
    modelId = _slug()
    layer = _slug()
    index = IndexField()
    description = fields.CharField(required=False, allow_blank=True, allow_null=True,
                                   max_length=2000, default="")


class ListNewInSerializer(serializers.Serializer):
    name = fields.CharField(max_length=200)
    description = fields.CharField(required=False, allow_blank=True, allow_null=True,
                                   max_length=5000, default="")
    testText = fields.CharField(required=False, allow_blank=True, allow_null=True, max_length=5000)
    defaultTestText = fields.CharField(required=False, allow_blank=True, allow_null=True,
                                       max_length=5000)


class ListNewWithFeaturesInSerializer(ListNewInSerializer):
    features = ListFeatureInSerializer(many=True, required=False,
                                       max_length=MAX_LIST_FEATURES_PER_CALL)


class ListIdInSerializer(serializers.Serializer):
    listId = IdField()


class ListUpdateInSerializer(ListIdInSerializer):
    name = fields.CharField(max_length=200)
    description = fields.CharField(required=False, allow_blank=True, allow_null=True, max_length=5000)
    defaultTestText = fields.CharField(required=False, allow_blank=True, allow_null=True,
                                       max_length=5000)


class ListAddFeaturesInSerializer(ListIdInSerializer):
    featuresToAdd = ListFeatureInSerializer(many=True, min_length=1, max_length=MAX_LIST_FEATURES_PER_CALL)


class ListItemRefInSerializer(ListIdInSerializer):
    modelId = _slug()
    layer = _slug()
    index = IndexField()


class ListEditFeatureInSerializer(ListItemRefInSerializer):
    description = fields.CharField(allow_blank=True, max_length=2000)


class VectorNewInSerializer(serializers.Serializer):
    modelId = _slug()
    layerNumber = fields.IntegerField(min_value=0, max_value=10_000)
    hookType = serializers.ChoiceField(choices=list(VECTOR_HOOK_TYPES))
    vector = serializers.ListField(child=_float(), min_length=1, max_length=MAX_VECTOR_LENGTH)
    vectorDefaultSteerStrength = RealField(
        required=False, allow_null=True, default=10.0, min_value=STEER_STRENGTH_RANGE[0],
        max_value=STEER_STRENGTH_RANGE[1])
    vectorLabel = fields.CharField(max_length=500)


class ModelNewInSerializer(serializers.Serializer):
    id = fields.RegexField(MODEL_ID_RE, min_length=2, max_length=32, error_messages={
        "invalid": "must be lowercase letters, digits, '-' and '.', start with a letter and not end "
                   "with '-' or '.'"})
    layers = fields.IntegerField(min_value=1, max_value=127)
    displayName = fields.CharField(required=False, allow_null=True, min_length=1, max_length=64)
    url = _web_url(max_length=200)
    dimension = fields.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=65_536,
        help_text="d_model, which uploaded vectors must match (an extension: Neuronpedia leaves it "
                  "unset for user models)")

    def validate_id(self, value: str) -> str:
        if "--" in value or ".." in value:
            raise serializers.ValidationError("must not contain '--' or '..'")
        return value


class SourceSetNewInSerializer(serializers.Serializer):
    name = fields.RegexField(SOURCE_SET_NAME_RE, max_length=100, error_messages={
        "invalid": "must be lowercase letters, digits and '-', not starting or ending with '-'"})
    modelId = _slug()
    description = fields.CharField(required=False, allow_null=True, allow_blank=True, max_length=128)
    url = _web_url(max_length=500)

    def validate_name(self, value: str) -> str:
        if value == "neurons" or "--" in value or value.startswith("neuronpedia-"):
            raise serializers.ValidationError("this name is reserved or contains '--'")
        return value


# --- Output serializers --------------------------------------------------------------------------

class MessageSerializer(serializers.Serializer):
    message = serializers.CharField()


class ModelOutSerializer(serializers.ModelSerializer):
    displayName = serializers.CharField(source="display_name")
    displayNameShort = serializers.CharField(source="display_name_short")
    creatorId = serializers.CharField(source="creator_id", allow_null=True)
    neuronsPerLayer = serializers.IntegerField(source="neurons_per_layer")
    tlensId = serializers.CharField(source="tlens_id")
    inferenceEnabled = serializers.BooleanField(source="inference_enabled")
    defaultSourceSetName = serializers.CharField(source="default_source_set_name")
    defaultSourceId = serializers.CharField(source="default_source_name")
    # the link as stored: an http(s) IRI (non-ASCII hosts allowed), so not the schema's ASCII-only "uri"
    website = serializers.CharField(max_length=200)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = Model
        fields = ["id", "displayName", "displayNameShort", "creatorId", "layers", "neuronsPerLayer",
                  "dimension", "owner", "website", "visibility", "instruct", "thinking", "tlensId",
                  "inferenceEnabled", "defaultSourceSetName", "defaultSourceId", "createdAt", "updatedAt"]


class SourceOutSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="name")
    modelId = serializers.CharField(source="model_id")
    setName = serializers.CharField(source="source_set.name")
    hookName = serializers.CharField(source="hook_name")
    hasDashboards = serializers.BooleanField(source="has_dashboards")
    inferenceEnabled = serializers.BooleanField(source="inference_enabled")
    saelensRelease = serializers.CharField(source="saelens_release")
    saelensSaeId = serializers.CharField(source="saelens_sae_id")
    hfRepoId = serializers.CharField(source="hf_repo_id")
    hfFolderId = serializers.CharField(source="hf_folder_id")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Source
        fields = ["id", "modelId", "setName", "layer", "hookName", "hasDashboards", "inferenceEnabled",
                  "saelensRelease", "saelensSaeId", "hfRepoId", "hfFolderId", "visibility", "createdAt"]


class SourceSetOutSerializer(serializers.ModelSerializer):
    modelId = serializers.CharField(source="model_id")
    creatorName = serializers.CharField(source="creator_name")
    creatorId = serializers.CharField(source="creator_id", allow_null=True)
    releaseName = serializers.CharField(source="release_id", allow_null=True)
    hasDashboards = serializers.BooleanField(source="has_dashboards")
    allowInferenceSearch = serializers.BooleanField(source="allow_inference_search")
    showDfa = serializers.BooleanField(source="show_dfa")
    showCorrelated = serializers.BooleanField(source="show_correlated")
    showUmap = serializers.BooleanField(source="show_umap")
    defaultRange = serializers.IntegerField(source="default_range")
    defaultShowBreaks = serializers.BooleanField(source="default_show_breaks")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = SourceSet
        fields = ["name", "modelId", "description", "type", "creatorName", "creatorId", "urls", "visibility",
                  "releaseName", "hasDashboards", "allowInferenceSearch", "showDfa", "showCorrelated",
                  "showUmap", "defaultRange", "defaultShowBreaks", "createdAt"]


class SourceSetWithSourcesOutSerializer(SourceSetOutSerializer):
    sources = SourceOutSerializer(many=True, source="sources.all")

    class Meta(SourceSetOutSerializer.Meta):
        fields = [*SourceSetOutSerializer.Meta.fields, "sources"]


class _FeatureKeyOut(serializers.Serializer):
    """modelId / layer / source / index of the feature a row belongs to."""

    modelId = serializers.CharField(source="feature.source.model_id")
    layer = serializers.CharField(source="feature.source.name")
    source = serializers.CharField(source="feature.source.name")
    index = serializers.CharField(source="feature.index")


class ActivationOutSerializer(_FeatureKeyOut, serializers.ModelSerializer):
    id = serializers.CharField(source="np_id", help_text="Neuronpedia's id for an imported row")
    maxValue = serializers.FloatField(source="max_value")
    maxValueTokenIndex = serializers.IntegerField(source="max_value_token_index")
    minValue = serializers.FloatField(source="min_value", allow_null=True)
    binMin = serializers.FloatField(source="bin_min", allow_null=True)
    binMax = serializers.FloatField(source="bin_max", allow_null=True)
    binContains = serializers.SerializerMethodField(
        help_text="share of activations in this quantile bin (0..1); null for the top-activations group, "
                  "which is stored as -1 (the SDK rejects values outside 0..1)")
    qualifyingTokenIndex = serializers.IntegerField(source="qualifying_token_index", allow_null=True)
    dataSource = serializers.CharField(source="data_source", allow_null=True)
    dataIndex = serializers.CharField(source="data_index", allow_null=True)
    dfaValues = serializers.ListField(child=serializers.FloatField(), source="dfa_values")
    dfaTargetIndex = serializers.IntegerField(source="dfa_target_index", allow_null=True)
    dfaMaxValue = serializers.FloatField(source="dfa_max_value", allow_null=True)
    creatorId = serializers.CharField(source="np_creator_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Activation
        fields = ["id", "modelId", "layer", "source", "index", "tokens", "values", "maxValue",
                  "maxValueTokenIndex", "minValue", "binMin", "binMax", "binContains",
                  "qualifyingTokenIndex", "dataSource", "dataIndex", "dfaValues", "dfaTargetIndex",
                  "dfaMaxValue", "creatorId", "createdAt"]

    def get_binContains(self, obj: Activation) -> float | None:  # noqa: N802
        value = obj.bin_contains
        return value if value is not None and 0 <= value <= 1 else None


class ExplanationScoreOutSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    explanationScoreTypeName = serializers.CharField(source="score_type_id")
    explanationScoreModelName = serializers.CharField(source="score_model_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = ExplanationScore
        fields = ["id", "value", "explanationScoreTypeName", "explanationScoreModelName", "createdAt"]


class ExplanationOutSerializer(_FeatureKeyOut, serializers.ModelSerializer):
    id = serializers.CharField(source="np_id", help_text="Neuronpedia's id for an imported explanation")
    authorId = serializers.CharField(source="np_author_id", allow_null=True)
    triggeredByUserId = serializers.CharField(source="triggered_by_id", allow_null=True)
    typeName = serializers.CharField(source="type_id", allow_null=True)
    explanationModelName = serializers.CharField(source="explanation_model_id", allow_null=True)
    scoreV1 = serializers.FloatField(source="score_v1")
    scoreV2 = serializers.FloatField(source="score_v2", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    scores = ExplanationScoreOutSerializer(many=True, source="scores.all")

    class Meta:
        model = Explanation
        fields = ["id", "modelId", "layer", "source", "index", "description", "authorId",
                  "triggeredByUserId", "typeName", "explanationModelName", "scoreV1", "scoreV2", "notes",
                  "createdAt", "scores"]


class ListSummaryOutSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    userId = serializers.CharField(source="owner_id")
    defaultTestText = serializers.CharField(source="default_test_text")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    url = serializers.SerializerMethodField()

    class Meta:
        model = FeatureList
        fields = ["id", "name", "description", "defaultTestText", "userId", "visibility", "createdAt",
                  "updatedAt", "url"]

    def get_url(self, obj: FeatureList) -> str:
        request = self.context.get("request")
        path = f"/list/{obj.pk}"
        return request.build_absolute_uri(path) if request is not None else path


class FeatureOutSerializer(serializers.ModelSerializer):
    """A feature in Neuronpedia's `Neuron` shape with its model, source, set, activations (by maxValue
    desc), explanations (with scores) and the lists the caller may see."""

    modelId = serializers.CharField(source="source.model_id")
    layer = serializers.CharField(source="source.name")
    index = serializers.CharField()
    sourceSetName = serializers.CharField(source="source.source_set.name")
    creatorId = serializers.CharField(source="np_creator_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    maxActApprox = serializers.FloatField(source="max_act_approx", allow_null=True)
    hasVector = serializers.BooleanField(source="has_vector")
    vectorLabel = serializers.CharField(source="vector_label", allow_null=True)
    vectorDefaultSteerStrength = serializers.FloatField(source="vector_default_steer_strength",
                                                        allow_null=True)
    hookName = serializers.CharField(source="hook_name", allow_null=True)
    topkCosSimIndices = serializers.ListField(child=serializers.IntegerField(),
                                              source="topk_cos_sim_indices")
    topkCosSimValues = serializers.ListField(child=serializers.FloatField(), source="topk_cos_sim_values")
    model = ModelOutSerializer(source="source.model")
    source = SourceOutSerializer()
    sourceSet = SourceSetOutSerializer(source="source.source_set")
    activations = ActivationOutSerializer(many=True, source="shown_activations")
    explanations = ExplanationOutSerializer(many=True, source="explanations.all")
    lists = ListSummaryOutSerializer(many=True, source="visible_lists")
    comments = serializers.SerializerMethodField()

    class Meta:
        model = Feature
        fields = [
            "modelId", "layer", "index", "sourceSetName", "creatorId", "createdAt", "maxActApprox",
            "frac_nonzero", "is_dead", "hasVector", "vector", "vectorLabel", "vectorDefaultSteerStrength",
            "hookName", "topkCosSimIndices", "topkCosSimValues", "neuron_alignment_indices",
            "neuron_alignment_values", "neuron_alignment_l1", "correlated_neurons_indices",
            "correlated_neurons_pearson", "correlated_neurons_l1", "correlated_features_indices",
            "correlated_features_pearson", "correlated_features_l1", "neg_str", "neg_values", "pos_str",
            "pos_values", "freq_hist_data_bar_heights", "freq_hist_data_bar_values",
            "logits_hist_data_bar_heights", "logits_hist_data_bar_values", "decoder_weights_dist",
            "umap_cluster", "umap_log_feature_sparsity", "umap_x", "umap_y", "model", "source",
            "sourceSet", "activations", "explanations", "lists", "comments"]

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_comments(self, obj: Feature) -> list[dict[str, Any]]:
        return []  # feature comments are not part of this platform yet


class ListItemOutSerializer(serializers.ModelSerializer):
    listId = serializers.CharField(source="feature_list_id")
    modelId = serializers.CharField(source="feature.source.model_id")
    layer = serializers.CharField(source="feature.source.name")
    index = serializers.CharField(source="feature.index")
    userId = serializers.CharField(source="added_by_id", allow_null=True)
    addedAt = serializers.DateTimeField(source="added_at")

    class Meta:
        model = ListItem
        fields = ["listId", "modelId", "layer", "index", "description", "userId", "addedAt"]


class ListDetailOutSerializer(ListSummaryOutSerializer):
    neurons = ListItemOutSerializer(many=True, source="items.all")

    class Meta(ListSummaryOutSerializer.Meta):
        fields = [*ListSummaryOutSerializer.Meta.fields, "neurons"]


class VectorOutSerializer(serializers.ModelSerializer):
    """A vector as /vector/get and /vector/list-owned return it."""

    modelId = serializers.CharField(source="source.model_id")
    layer = serializers.CharField(source="source.name")
    index = serializers.CharField()
    vectorLabel = serializers.CharField(source="vector_label", allow_null=True)
    vectorDefaultSteerStrength = serializers.FloatField(source="vector_default_steer_strength",
                                                        allow_null=True)
    hookName = serializers.CharField(source="hook_name", allow_null=True)
    vector = serializers.ListField(child=serializers.FloatField())
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Feature
        fields = ["modelId", "layer", "index", "vectorLabel", "vectorDefaultSteerStrength", "hookName",
                  "vector", "createdAt"]


class NewVectorOutSerializer(serializers.ModelSerializer):
    """A vector as /vector/new returns it (Neuronpedia uses other names there)."""

    modelId = serializers.CharField(source="source.model_id")
    source = serializers.CharField(source="source.name")
    index = serializers.CharField()
    label = serializers.CharField(source="vector_label", allow_null=True)
    defaultSteerStrength = serializers.FloatField(source="vector_default_steer_strength", allow_null=True)
    hookName = serializers.CharField(source="hook_name", allow_null=True)
    values = serializers.ListField(child=serializers.FloatField(), source="vector")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Feature
        fields = ["modelId", "source", "index", "label", "defaultSteerStrength", "hookName", "values",
                  "createdAt"]


class VectorNewResponseSerializer(serializers.Serializer):
    message = serializers.CharField()
    url = serializers.CharField()
    vector = NewVectorOutSerializer()


class VectorGetResponseSerializer(serializers.Serializer):
    vector = VectorOutSerializer()


class VectorListResponseSerializer(serializers.Serializer):
    vectors = VectorOutSerializer(many=True)


class ExplanationNewResponseSerializer(serializers.Serializer):
    message = serializers.CharField()
    url = serializers.CharField()
    explanation = ExplanationOutSerializer()
