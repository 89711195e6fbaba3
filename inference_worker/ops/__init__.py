"""Pure compute operations over a HookedTransformer and its sources (imports torch)."""

from __future__ import annotations

from inference_worker.ops.activations import (
    ActivationResult,
    ActiveFeaturesResult,
    FeatureActivation,
    SearchAllResult,
    TokenTopFeatures,
    TopkByTokenResult,
    activation_single,
    active_features,
    capture_hooks,
    search_all,
    topk_by_token,
)
from inference_worker.ops.limits import DEFAULT_LIMITS, LimitError, Limits
from inference_worker.ops.similarity import (
    CossimResult,
    DecoderVector,
    decoder_cossim,
    decoder_vector,
    topk_by_decoder_cossim,
)
from inference_worker.ops.steering import (
    ChatMessage,
    SteerFeature,
    SteerMethod,
    SteerOutput,
    SteerRequest,
    SteerResult,
    SteerType,
    SteerVector,
    TokenLogprob,
    apply_steering,
    resolve_steering,
    steer,
    steer_stream,
)
from inference_worker.ops.tokens import Tokenized, tokenize, tokenize_ids

__all__ = [
    "DEFAULT_LIMITS", "ActivationResult", "ActiveFeaturesResult", "ChatMessage", "CossimResult",
    "DecoderVector", "FeatureActivation", "LimitError", "Limits", "SearchAllResult", "SteerFeature",
    "SteerMethod", "SteerOutput", "SteerRequest", "SteerResult", "SteerType", "SteerVector",
    "TokenLogprob", "TokenTopFeatures", "Tokenized", "TopkByTokenResult", "activation_single",
    "active_features", "apply_steering", "capture_hooks", "decoder_cossim", "decoder_vector",
    "resolve_steering", "search_all", "steer", "steer_stream", "tokenize", "tokenize_ids",
    "topk_by_decoder_cossim", "topk_by_token",
]
