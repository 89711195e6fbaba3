"""Request and response shapes of the live-inference endpoints (activation/new, activation/source,
search-all, search-topk-by-token), in Neuronpedia's wire names."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from neuronpedia.api import fields
from neuronpedia.api.fields import IndexField

MAX_TEXT_CHARS = 8192
MAX_TEXTS = 16
MAX_SOURCE_TEXTS = 4
SEARCH_ALL_DEFAULT_RESULTS = 50
SEARCH_ALL_MAX_RESULTS = 100
TOPK_DEFAULT_RESULTS = 10
TOPK_MAX_RESULTS = 100


def _slug(**kwargs: Any) -> fields.CharField:
    return fields.CharField(max_length=160, **kwargs)


def _texts_schema(max_items: int) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS, "pattern": fields.NON_BLANK,
            "description": "not blank"}
    return {"oneOf": [text, {"type": "array", "items": text, "minItems": 1, "maxItems": max_items}]}


@extend_schema_field(_texts_schema(MAX_TEXTS))
class TextOrTextsField(serializers.Field):
    """One text or a list of texts (Neuronpedia's `customText` / `text`). Internally (texts, was_list)."""

    def __init__(self, *, max_items: int = MAX_TEXTS, **kwargs: Any) -> None:
        self.max_items = max_items
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> tuple[list[str], bool]:
        texts = data if isinstance(data, list) else [data]
        if not texts or len(texts) > self.max_items:
            raise serializers.ValidationError(f"must be a string or a list of 1 to {self.max_items} strings")
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise serializers.ValidationError("must be a non-empty string (or a list of them)")
            if len(text) > MAX_TEXT_CHARS:
                raise serializers.ValidationError(f"a text is longer than the limit of {MAX_TEXT_CHARS} "
                                                  "characters")
        return texts, isinstance(data, list)

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(_texts_schema(MAX_SOURCE_TEXTS))
class SourceTextsField(TextOrTextsField):
    """activation/source: one text or up to MAX_SOURCE_TEXTS."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_items=MAX_SOURCE_TEXTS, **kwargs)


class FeatureOrVectorRefSerializer(serializers.Serializer):
    modelId = _slug()
    source = _slug(required=False, help_text="source id, e.g. 6-res-jb (or `layer`)")
    layer = _slug(required=False, help_text="Neuronpedia's older name for `source`")
    index = IndexField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        source = attrs.get("source") or attrs.get("layer")
        if not source:
            raise serializers.ValidationError({"source": "This field is required (or give `layer`)."})
        attrs["source"] = source
        return attrs


class ActivationNewInSerializer(serializers.Serializer):
    feature = FeatureOrVectorRefSerializer(required=False, help_text="the feature or vector to test")
    neuron = FeatureOrVectorRefSerializer(required=False, help_text="older name for `feature`")
    customText = TextOrTextsField()
    ignoreBos = fields.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        ref = attrs.get("feature") or attrs.get("neuron")
        if ref is None:
            raise serializers.ValidationError({"feature": "This field is required."})
        attrs["feature"] = ref
        return attrs


class ActivationNewOutSerializer(serializers.Serializer):
    modelId = serializers.CharField()
    layer = serializers.CharField()
    source = serializers.CharField()
    index = serializers.CharField()
    tokens = serializers.ListField(child=serializers.CharField())
    values = serializers.ListField(child=serializers.FloatField())
    maxValue = serializers.FloatField()
    maxValueIndex = serializers.IntegerField()
    maxValueTokenIndex = serializers.IntegerField()
    minValue = serializers.FloatField()


class ActivationSourceInSerializer(serializers.Serializer):
    modelId = _slug()
    source = _slug()
    customText = SourceTextsField()


class ActivationSourceResultSerializer(serializers.Serializer):
    tokens = serializers.ListField(child=serializers.CharField())
    activeFeatures = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.FloatField())),
        help_text="feature index -> [[token position, value], ...] for every non-zero activation")


class ActivationSourceOutSerializer(serializers.Serializer):
    results = ActivationSourceResultSerializer(many=True)


@extend_schema_field({"type": "number", "nullable": True, "maximum": 1, "exclusiveMaximum": True,
                     "description": "<= 0 (or null) = off; else leave out features denser than this"})
class _BelowOneField(fields.FloatField):
    pass


class SearchAllInSerializer(serializers.Serializer):
    modelId = _slug()
    sourceSet = _slug()
    text = TextOrTextsField()
    selectedLayers = serializers.ListField(child=_slug(), required=False, default=list, max_length=256,
                                           help_text="source ids to search; [] = all of the set")
    sortIndexes = serializers.ListField(child=fields.IntegerField(min_value=0, max_value=100_000),
                                        required=False, default=list, max_length=256)
    ignoreBos = fields.BooleanField(required=False, default=True)
    densityThreshold = _BelowOneField(required=False, default=-1, allow_null=True)
    numResults = fields.IntegerField(required=False, default=SEARCH_ALL_DEFAULT_RESULTS, allow_null=True,
                                     min_value=1, max_value=SEARCH_ALL_MAX_RESULTS)

    def validate_densityThreshold(self, value: float | None) -> float:  # noqa: N802
        if value is None or value <= 0:
            return -1
        if value >= 1:
            raise serializers.ValidationError("must be below 1 (or <= 0, e.g. -1, for no threshold)")
        return value


class NeuronSummarySerializer(serializers.Serializer):
    modelId = serializers.CharField()
    layer = serializers.CharField()
    index = serializers.CharField()
    maxActApprox = serializers.FloatField(allow_null=True)
    frac_nonzero = serializers.FloatField(allow_null=True)
    explanations = serializers.ListField(child=serializers.DictField())


class SearchAllItemSerializer(serializers.Serializer):
    modelId = serializers.CharField()
    layer = serializers.CharField()
    index = serializers.CharField()
    values = serializers.ListField(child=serializers.FloatField())
    maxValue = serializers.FloatField()
    maxValueIndex = serializers.IntegerField()
    sumValues = serializers.FloatField()
    neuron = NeuronSummarySerializer(allow_null=True, help_text="stored data of the feature, when imported")


class SearchAllOutSerializer(serializers.Serializer):
    tokens = serializers.ListField(child=serializers.CharField())
    result = SearchAllItemSerializer(many=True)
    counts = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    sortIndexes = serializers.ListField(child=serializers.IntegerField())
    results = serializers.ListField(child=serializers.DictField(), required=False,
                                    help_text="when `text` is a list: one {tokens, result} per text (and no "
                                              "top-level tokens/result)")


class TopkByTokenInSerializer(serializers.Serializer):
    modelId = _slug()
    source = _slug()
    text = TextOrTextsField()
    numResults = fields.IntegerField(required=False, default=TOPK_DEFAULT_RESULTS, min_value=1,
                                     max_value=TOPK_MAX_RESULTS)
    ignoreBos = fields.BooleanField(required=False, default=True)
    densityThreshold = _BelowOneField(required=False, default=-1, allow_null=True)

    def validate_densityThreshold(self, value: float | None) -> float:  # noqa: N802
        if value is None or value <= 0:
            return -1
        if value >= 1:
            raise serializers.ValidationError("densityThreshold must be below 1 (or <= 0 for no threshold)")
        return value


class TopFeatureSerializer(serializers.Serializer):
    featureIndex = serializers.IntegerField()
    activationValue = serializers.FloatField()


class TokenTopFeaturesSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    token = serializers.CharField()
    isSpecial = serializers.BooleanField()
    topFeatures = TopFeatureSerializer(many=True)


class TopkByTokenOutSerializer(serializers.Serializer):
    tokens = serializers.ListField(child=serializers.CharField(), required=False)
    results = serializers.ListField(child=serializers.DictField(),
                                    help_text="per token {position, token, isSpecial, topFeatures}; when "
                                              "`text` is a list, one {tokens, results} per text")
