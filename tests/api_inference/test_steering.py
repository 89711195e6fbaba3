"""/api/steer, /api/steer-chat (blocking and SSE) and /api/steer-load through a real worker, and the
steering cache: a repeated request is answered from SteerOutput without calling the worker, and the
DEFAULT half is shared by every steered variant of a prompt."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse

from features import services as feature_services
from features.models import Feature, Model, Source
from steering.models import SteerOutput, SteerOutputFeature, SteerType
from steering.selectors import get_steer_result
from tests import factories
from tests.api_inference.conftest import MAX_NEW_TOKENS, MODEL_ID, SOURCE, Spy

pytestmark = pytest.mark.django_db(transaction=True)


def features(index: int = 1, strength: float = 8.0, source: str = SOURCE) -> list[dict[str, Any]]:
    return [{"modelId": MODEL_ID, "layer": source, "index": index, "strength": strength}]


def completion(**overrides: Any) -> dict[str, Any]:
    # the fields the official SDK's SteerCompletionRequest.steer_features sends
    return {"modelId": MODEL_ID, "prompt": "Once", "features": features(), "temperature": 0.7, "n_tokens": 6,
            "freq_penalty": 2, "seed": 42, "strength_multiplier": 4, **overrides}


def sae_features(*indexes: int) -> list[Feature]:
    source = Source.objects.get(model_id=MODEL_ID, name=SOURCE)
    return [factories.make_feature(source, i) for i in indexes]


def sse_frames(response: Any) -> list[dict[str, Any]]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/event-stream"
    assert response.is_async  # relayed on the event loop (redis.asyncio), not from a thread

    async def drain() -> list[bytes]:
        return [part async for part in response.streaming_content]

    text = b"".join(async_to_sync(drain)()).decode()
    chunks = [c for c in text.split("\n\n") if c]
    assert all(c.startswith("data: ") for c in chunks), text
    return [json.loads(c[len("data: "):]) for c in chunks]


def test_steer_is_cached_and_shares_the_default_half(live: None, anon: Any, spy: Spy) -> None:
    sae_features(1)
    first = anon.post("/api/steer/", completion(), format="json")  # the SDK posts to `steer/`
    assert first.status_code == 200, first.json()
    body = first.json()
    assert body["STEERED"].startswith("Once")
    assert body["DEFAULT"].startswith("Once")
    assert body["STEERED"] != body["DEFAULT"]
    assert 1 <= len(body["steeredLogProbs"]) <= 6  # one per generated token (n_tokens 6, or up to EOS)
    assert len(body["defaultLogProbs"][0]["topLogprobs"]) == 5
    assert body["shareUrl"].endswith(f"/steer/{body['id']}")
    assert len(spy.operations("steer")) == 1  # one worker call for both halves
    assert spy.operations("steer")[0]["types"] == ["STEERED", "DEFAULT"]

    again = anon.post("/api/steer", completion(), format="json").json()
    assert again == body
    assert len(spy.operations("steer")) == 1  # cache hit: no new worker call

    stronger = anon.post("/api/steer", completion(features=features(strength=12)), format="json").json()
    assert len(spy.operations("steer")) == 2
    assert spy.operations("steer")[1]["types"] == ["STEERED"]  # DEFAULT came from the cache
    assert stronger["DEFAULT"] == body["DEFAULT"]
    assert stronger["defaultLogProbs"] == body["defaultLogProbs"]
    assert stronger["id"] != body["id"]

    default = SteerOutput.objects.get(type=SteerType.DEFAULT)
    steered = SteerOutput.objects.filter(type=SteerType.STEERED)
    assert {row.connected_default_output_id for row in steered} == {default.pk}
    assert sorted(SteerOutputFeature.objects.values_list("strength", flat=True)) == [8.0, 12.0]

    loaded = anon.post("/api/steer-load", {"steerOutputId": body["id"]}, format="json").json()
    keys = ("STEERED", "DEFAULT", "id")
    assert [loaded[k] for k in keys] == [body[k] for k in keys]
    assert loaded["features"] == [{"modelId": MODEL_ID, "layer": SOURCE, "index": "1", "strength": 8.0}]
    assert loaded["settings"]["seed"] == 42
    pair = get_steer_result(body["id"])
    assert pair is not None
    assert pair.default == default
    assert anon.post("/api/steer-load", {"steerOutputId": "nope"}, format="json").status_code == 404


def test_steer_streams_whole_text_frames_then_the_share_id(live: None, anon: Any, spy: Spy) -> None:
    sae_features(2)
    request = completion(features=features(index=2), seed=7, n_tokens=8, stream=True)
    frames = sse_frames(anon.post("/api/steer", request, format="json"))
    assert len(frames) >= 3
    assert [f["done"] for f in frames] == [False] * (len(frames) - 1) + [True]
    partial_lengths = [len(f["STEERED"] or "") for f in frames]
    assert partial_lengths == sorted(partial_lengths)  # whole text so far, growing
    last = frames[-1]
    assert last["id"]
    assert last["shareUrl"].endswith(last["id"])
    assert 1 <= len(last["steeredLogProbs"]) <= 8
    assert all(f["id"] is None for f in frames[:-1])
    assert len(spy.operations("steer-stream")) == 1

    # the same request again is a cache hit: plain JSON, same share id, no worker call
    cached = anon.post("/api/steer", request, format="json")
    assert cached["Content-Type"] == "application/json"
    assert cached.json()["id"] == last["id"]
    assert cached.json()["STEERED"] == last["STEERED"]
    assert len(spy.operations("steer-stream")) == 1
    assert not spy.operations("steer")

    # a worker-side refusal arrives as a final error frame instead of hanging the stream
    failed = sse_frames(anon.post("/api/steer", {**request, "n_tokens": MAX_NEW_TOKENS + 1}, format="json"))
    assert failed[-1]["done"] is True
    assert failed[-1]["status"] == 400
    assert "max_new_tokens" in failed[-1]["message"]


def test_steer_chat_with_separate_histories(live: None, anon: Any, spy: Spy) -> None:
    sae_features(3)
    body = {"modelId": MODEL_ID, "features": features(index=3), "temperature": 0.5, "n_tokens": 5,
            "freq_penalty": 2, "seed": 16, "strength_multiplier": 4, "steer_special_tokens": True,
            "defaultChatMessages": [{"role": "user", "content": "hi"}],
            "steeredChatMessages": [{"role": "user", "content": "hey"}]}
    response = anon.post("/api/steer-chat/", body, format="json")
    assert response.status_code == 200, response.json()
    result = response.json()
    assert "<|im_start|>user\nhey" in result["STEERED"]["raw"]
    assert "<|im_start|>user\nhi" in result["DEFAULT"]["raw"]
    assert result["STEERED"]["chatTemplate"][-1]["role"] == "assistant"
    assert result["settings"]["steer_special_tokens"] is True
    assert result["id"]
    assert [p["types"] for p in spy.operations("steer")] == [["STEERED"], ["DEFAULT"]]

    same = {**body, "steeredChatMessages": body["defaultChatMessages"], "steer_special_tokens": False}
    shared = anon.post("/api/steer-chat", same, format="json").json()
    # DEFAULT ignores steer_special_tokens and had this history already: only STEERED runs
    assert [p["types"] for p in spy.operations("steer")][2:] == [["STEERED"]]
    assert shared["DEFAULT"] == result["DEFAULT"]
    streamed = sse_frames(anon.post("/api/steer-chat", {**same, "seed": 3, "stream": True}, format="json"))
    assert streamed[-1]["done"]
    assert streamed[-1]["STEERED"]["raw"].startswith("<|im_start|>")
    missing = {k: v for k, v in body.items() if k != "steer_special_tokens"}
    assert anon.post("/api/steer-chat", missing, format="json").status_code == 400


def test_steering_with_a_user_vector(live: None, anon: Any, alice: Any) -> None:
    model = Model.objects.get(pk=MODEL_ID)
    vector = feature_services.create_vector(user=alice, model=model, layer=0, hook_type="hook_resid_post",
                                            values=[0.5] * model.dimension, label="v",
                                            default_steer_strength=10)
    request = completion(features=features(index=vector.index, source=vector.source.name))
    response = anon.post("/api/steer", request, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["STEERED"] != response.json()["DEFAULT"]


def test_steering_refuses_mixing_bad_limits_and_unknown_features(transactional_db: None, anon: Any,
                                                                  alice: Any) -> None:
    model = factories.make_model("tiny-limits", layers=2, dimension=4)
    source = factories.make_source(model, layer=0, set_name="res-x")
    factories.make_feature(source, 1)
    vector = feature_services.create_vector(user=alice, model=model, layer=0, hook_type="hook_resid_post",
                                            values=[1.0, 0, 0, 0], label="v", default_steer_strength=10)
    sae = {"modelId": model.id, "layer": source.name, "index": 1, "strength": 4}
    vec = {"modelId": model.id, "layer": vector.source.name, "index": vector.index, "strength": 4}
    base = {**completion(), "modelId": model.id, "features": [sae]}

    mixed = anon.post("/api/steer", {**base, "features": [sae, vec]}, format="json")
    assert mixed.status_code == 400
    assert mixed.json()["message"] == "Can't steer both vector and non-vector features"
    for field, value in [("n_tokens", 0), ("n_tokens", 257), ("temperature", 2.5),
                         ("strength_multiplier", 11), ("seed", 100_000_001), ("prompt", "x" * 2049),
                         ("freq_penalty", 3)]:
        response = anon.post("/api/steer", {**base, field: value}, format="json")
        assert response.status_code == 400, (field, value)
        assert response.json()["message"].startswith(field), response.json()
    strong = anon.post("/api/steer", {**base, "features": [{**sae, "strength": 301}]}, format="json")
    assert strong.status_code == 400
    assert "strength" in strong.json()["message"]
    unknown = anon.post("/api/steer", {**base, "features": [{**sae, "index": 9}]}, format="json")
    assert unknown.status_code == 404
    assert "tiny-limits/0-res-x/9" in unknown.json()["message"]
    other_model = anon.post("/api/steer", {**base, "modelId": "nope"}, format="json")
    assert other_model.status_code == 404
    assert anon.post("/api/steer", {**base, "features": []}, format="json").status_code == 400
