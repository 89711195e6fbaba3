"""Request and response shapes of /api/steer, /api/steer-chat and /api/steer-load, with Neuronpedia's
legacy snake_case knobs (`n_tokens`, `strength_multiplier`, `freq_penalty`, `steer_method`,
`steer_special_tokens`) and its result keys (`STEERED`, `DEFAULT`, `steeredLogProbs`, ...)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from neuronpedia.api import fields
from neuronpedia.api.fields import IndexField
from steering import services as svc
from steering.models import SteerMethod, SteerOutput, SteerType
from steering.selectors import SteerPair


def _slug(**kwargs: Any) -> fields.CharField:
    return fields.CharField(max_length=160, **kwargs)


class SteerFeatureInSerializer(serializers.Serializer):
    modelId = _slug()
    layer = _slug(help_text="source id (for a vector: its source, e.g. 6-neuronpedia-resid-post)")
    index = IndexField()
    strength = fields.FloatField(min_value=svc.STRENGTH_RANGE[0], max_value=svc.STRENGTH_RANGE[1])


class _SteerKnobsSerializer(serializers.Serializer):
    modelId = _slug()
    features = SteerFeatureInSerializer(many=True, min_length=1, max_length=svc.MAX_FEATURES,
                                        help_text="all SAE features or all vectors (mixing is refused)")
    temperature = fields.FloatField(min_value=svc.TEMPERATURE_RANGE[0],
                                    max_value=svc.TEMPERATURE_RANGE[1])
    n_tokens = fields.IntegerField(min_value=svc.N_TOKENS_RANGE[0], max_value=svc.N_TOKENS_RANGE[1])
    freq_penalty = fields.FloatField(required=False, default=1.0, min_value=svc.FREQ_PENALTY_RANGE[0],
                                     max_value=svc.FREQ_PENALTY_RANGE[1])
    seed = fields.IntegerField(min_value=svc.SEED_RANGE[0], max_value=svc.SEED_RANGE[1])
    strength_multiplier = fields.FloatField(min_value=svc.STRENGTH_MULTIPLIER_RANGE[0],
                                            max_value=svc.STRENGTH_MULTIPLIER_RANGE[1])
    steer_method = serializers.ChoiceField(choices=SteerMethod.values, required=False,
                                           default=SteerMethod.SIMPLE_ADDITIVE)
    stream = fields.BooleanField(required=False, default=False,
                                 help_text="answer with Server-Sent Events (`data: {...}` frames, each "
                                           "with the whole text so far; the last one has the share id)")


class SteerInSerializer(_SteerKnobsSerializer):
    prompt = fields.CharField(max_length=svc.MAX_PROMPT_CHARS, trim_whitespace=False)


class ChatMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=svc.CHAT_ROLES)
    content = fields.CharField(allow_blank=True, trim_whitespace=False, max_length=svc.MAX_PROMPT_CHARS)


class SteerChatInSerializer(_SteerKnobsSerializer):
    defaultChatMessages = ChatMessageSerializer(many=True, min_length=1, max_length=svc.MAX_CHAT_MESSAGES)
    steeredChatMessages = ChatMessageSerializer(many=True, min_length=1, max_length=svc.MAX_CHAT_MESSAGES)
    steer_special_tokens = fields.BooleanField()
    isAssistantAxis = fields.BooleanField(required=False, default=False,
                                          help_text="persona readouts: not supported (400 when true)")

    def validate_isAssistantAxis(self, value: bool) -> bool:  # noqa: N802
        if value:
            raise serializers.ValidationError("assistant-axis readouts are not supported by this server")
        return value


class SteerLoadInSerializer(serializers.Serializer):
    steerOutputId = fields.CharField(max_length=32)


class TopLogprobSerializer(serializers.Serializer):
    token = serializers.CharField()
    logprob = serializers.FloatField()


class LogprobSerializer(serializers.Serializer):
    token = serializers.CharField()
    logprob = serializers.FloatField()
    topLogprobs = TopLogprobSerializer(many=True)


class SteerSettingsSerializer(serializers.Serializer):
    temperature = serializers.FloatField()
    n_tokens = serializers.IntegerField()
    freq_penalty = serializers.FloatField()
    seed = serializers.IntegerField()
    strength_multiplier = serializers.FloatField()
    steer_special_tokens = serializers.BooleanField()
    steer_method = serializers.CharField()


class SteerFeatureOutSerializer(serializers.Serializer):
    modelId = serializers.CharField()
    layer = serializers.CharField()
    index = serializers.CharField()
    strength = serializers.FloatField()


class SteerCompletionOutSerializer(serializers.Serializer):
    STEERED = serializers.CharField(allow_null=True, help_text="prompt + steered continuation")
    DEFAULT = serializers.CharField(allow_null=True, help_text="prompt + default continuation")
    steeredLogProbs = LogprobSerializer(many=True, allow_null=True)
    defaultLogProbs = LogprobSerializer(many=True, allow_null=True)
    id = serializers.CharField(allow_null=True, help_text="share id of the STEERED output")
    shareUrl = serializers.CharField(allow_null=True)
    limit = serializers.CharField(allow_null=True, help_text="requests left in this rate-limit window")
    inputText = serializers.CharField(required=False)
    settings = SteerSettingsSerializer(required=False)
    features = SteerFeatureOutSerializer(many=True, required=False)
    done = serializers.BooleanField(required=False, help_text="streaming only: true on the last frame")


class ChatOutputSerializer(serializers.Serializer):
    raw = serializers.CharField(help_text="the chat template as the model saw it + the reply")
    chatTemplate = serializers.ListField(child=serializers.DictField(), allow_null=True)
    logprobs = LogprobSerializer(many=True, allow_null=True)


class SteerChatOutSerializer(serializers.Serializer):
    STEERED = ChatOutputSerializer(allow_null=True)
    DEFAULT = ChatOutputSerializer(allow_null=True)
    id = serializers.CharField(allow_null=True)
    shareUrl = serializers.CharField(allow_null=True)
    limit = serializers.CharField(allow_null=True)
    settings = SteerSettingsSerializer()
    inputText = serializers.CharField(required=False)
    features = SteerFeatureOutSerializer(many=True, required=False)
    done = serializers.BooleanField(required=False)


# --- presenting results --------------------------------------------------------------------------

def _half_out(chat: bool, text: str | None, chat_template: Any, logprobs: Any) -> Any:
    if text is None:
        return None
    return {"raw": text, "chatTemplate": chat_template, "logprobs": logprobs} if chat else text


def result_payload(*, chat: bool, halves: dict[str, Any], share_id: str | None, share_url: str | None,
                   limit: str | None, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Neuronpedia's SteerResult (completion) / SteerResultChat (chat). `halves`: type -> an object with
    `text`, `chat` and `logprobs` (services.GeneratedHalf), or missing."""
    out: dict[str, Any] = {}
    for steer_type in (SteerType.STEERED, SteerType.DEFAULT):
        half = halves.get(steer_type)
        out[str(steer_type)] = _half_out(chat, half.text, half.chat, half.logprobs) if half else None
        if not chat:
            prefix = "steeredLogProbs" if steer_type == SteerType.STEERED else "defaultLogProbs"
            out[prefix] = half.logprobs if half else None
    out.update({"id": share_id, "shareUrl": share_url, "limit": limit})
    if settings is not None:
        out["settings"] = settings
    return out


def settings_of(row: SteerOutput | svc.SteerParams) -> dict[str, Any]:
    if isinstance(row, svc.SteerParams):
        return {"temperature": row.temperature, "n_tokens": row.n_tokens, "freq_penalty": row.freq_penalty,
                "seed": row.seed, "strength_multiplier": row.strength_multiplier,
                "steer_special_tokens": row.steer_special_tokens, "steer_method": row.steer_method}
    return {"temperature": row.temperature, "n_tokens": row.num_tokens, "freq_penalty": row.freq_penalty,
            "seed": row.seed, "strength_multiplier": row.strength_multiplier,
            "steer_special_tokens": row.steer_special_tokens, "steer_method": row.steer_method}


def row_half(row: SteerOutput | None) -> svc.GeneratedHalf | None:
    if row is None:
        return None
    return svc.GeneratedHalf(row.type, row.output_text, row.logprobs, row.output_chat_messages,
                             row.input_text)


def pair_payload(pair: SteerPair, *, share_url: str, limit: str | None = None) -> dict[str, Any]:
    """A stored pair as /api/steer-load returns it: the result plus settings, input and features."""
    halves = {t: h for t, h in ((SteerType.STEERED, row_half(pair.steered)),
                                (SteerType.DEFAULT, row_half(pair.default))) if h is not None}
    out = result_payload(chat=pair.is_chat, halves=halves, share_id=pair.share_id, share_url=share_url,
                         limit=limit, settings=settings_of(pair.steered))
    out["inputText"] = pair.steered.input_text
    out["features"] = [{"modelId": f.feature.source.model_id, "layer": f.feature.source.name,
                        "index": str(f.feature.index), "strength": f.strength}
                       for f in pair.steered.steer_features.all()]
    if pair.is_chat:
        out["defaultChatMessages"] = pair.default.chat_messages if pair.default else None
        out["steeredChatMessages"] = pair.steered.chat_messages
    return out
