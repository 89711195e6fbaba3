from __future__ import annotations

import pytest

from features.models import Model, SourceSet, Visibility

pytestmark = pytest.mark.django_db


def test_model_new_creates_an_unlisted_model(alice_api, alice) -> None:
    body = alice_api.post("/api/model/new", {"id": "pup-model-3", "layers": 3, "displayName": "Pup",
                                             "url": "https://example.org"}, format="json").json()
    assert (body["id"], body["layers"], body["displayName"], body["website"]) == (
        "pup-model-3", 3, "Pup", "https://example.org")
    model = Model.objects.get(pk="pup-model-3")
    assert (model.visibility, model.creator, model.inference_enabled) == (Visibility.UNLISTED, alice, False)


@pytest.mark.parametrize(("payload", "status"), [
    ({"id": "Bad_Id", "layers": 3}, 400), ({"id": "ok-model", "layers": 0}, 400),
    ({"id": "ok-model", "layers": 128}, 400), ({"id": "a--b", "layers": 1}, 400),
    ({"id": "gpt2-small", "layers": 1}, 400),
])
def test_model_new_validates(alice_api, catalog, payload, status) -> None:
    response = alice_api.post("/api/model/new", payload, format="json")
    assert response.status_code == status
    assert response.json()["message"]


def test_model_new_needs_a_key(anon) -> None:
    assert anon.post("/api/model/new", {"id": "m1", "layers": 1}, format="json").status_code == 401


def test_source_set_new_creates_a_source_per_layer(alice_api, alice_source) -> None:
    body = alice_api.post("/api/source-set/new", {"name": "pupscope", "modelId": "alice-model",
                                                  "description": "Pups"}, format="json").json()
    assert [s["id"] for s in body["sources"]] == ["0-pupscope", "1-pupscope"]
    assert body["sources"][0]["setName"] == "pupscope"
    assert body["description"] == "Pups"


@pytest.mark.parametrize(("payload", "message"), [
    ({"name": "alice-sae", "modelId": "alice-model"}, "already exists"),
    ({"name": "x", "modelId": "no-model"}, "Model not found"),
    ({"name": "Bad Name", "modelId": "alice-model"}, "name"),
    ({"name": "neurons", "modelId": "alice-model"}, "reserved"),
    ({"name": "ok", "modelId": "alice-model", "description": "x" * 129}, "description"),
])
def test_source_set_new_validates(alice_api, alice_source, payload, message) -> None:
    response = alice_api.post("/api/source-set/new", payload, format="json")
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_source_set_get(anon, bob_api, alice_api, alice_source) -> None:
    body = anon.get("/api/source-set/alice-model/alice-sae").json()
    assert body["modelId"] == "alice-model"
    assert len(body["sources"]) == 2
    assert anon.get("/api/source-set/alice-model/nope").status_code == 404
    SourceSet.objects.filter(name="alice-sae").update(visibility=Visibility.PRIVATE)
    assert bob_api.get("/api/source-set/alice-model/alice-sae").status_code == 404
    assert alice_api.get("/api/source-set/alice-model/alice-sae").status_code == 200
