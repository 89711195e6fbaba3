from __future__ import annotations

import pytest

from features.models import Activation, Explanation, ExplanationModel
from tests import factories

pytestmark = pytest.mark.django_db
GET = {"modelId": "gpt2-small", "source": "6-res-jb", "index": "200"}


def test_activation_get_returns_rows_by_max_value(anon, catalog) -> None:
    body = anon.post("/api/activation/get", GET, format="json").json()
    assert [a["maxValue"] for a in body] == [9.5, 4.0]
    assert body[0]["tokens"][-1] == " France"
    assert body[0]["binMin"] == -1


def test_activation_get_errors(anon, catalog) -> None:
    assert anon.post("/api/activation/get", {**GET, "index": 5}, format="json").status_code == 404
    factories.make_feature(catalog["source"], 5)
    response = anon.post("/api/activation/get", {**GET, "index": 5}, format="json")
    assert response.status_code == 404
    assert response.json()["message"] == "Activations not found"
    assert anon.post("/api/activation/get", {"modelId": "gpt2-small"}, format="json").status_code == 400


def _acts(index) -> dict:
    return {"modelId": "alice-model", "source": "1-alice-sae", "index": index,
            "activations": [{"tokens": ["x", "y"], "values": [1.0, 3.0]}]}


def test_activation_upload_batch_owner_only(alice_api, bob_api, anon, alice, alice_source) -> None:
    feature = factories.make_feature(alice_source, 4, creator=alice)
    response = alice_api.post("/api/activation/upload-batch", _acts("4"), format="json")
    assert response.json() == {"message": "1 activations created."}
    assert Activation.objects.get(feature=feature).max_value == 3.0
    assert bob_api.post("/api/activation/upload-batch", _acts(4), format="json").status_code == 403
    assert anon.post("/api/activation/upload-batch", _acts(4), format="json").status_code == 401
    assert alice_api.post("/api/activation/upload-batch", _acts(5), format="json").status_code == 404
    bad = {**_acts(4), "activations": [{"tokens": ["x"], "values": [1.0, 2.0]}]}
    assert alice_api.post("/api/activation/upload-batch", bad, format="json").status_code == 400


def test_explanation_get_by_id(anon, catalog) -> None:
    explanation = Explanation.objects.create(feature=catalog["feature"], description="capitals")
    body = anon.get(f"/api/explanation/{explanation.pk}").json()
    assert (body["id"], body["description"], body["layer"], body["index"]) == (
        str(explanation.pk), "capitals", "6-res-jb", "200")
    assert anon.get("/api/explanation/987654321").status_code == 404


def test_explanation_new_adds_a_human_label(alice_api, anon, catalog) -> None:
    ExplanationModel.objects.create(name="gpt-4o-mini")
    payload = {"feature": {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "200",
                           "explanation": "French capital", "explanationModel": "gpt-4o-mini"}}
    body = alice_api.post("/api/explanation/new", payload, format="json").json()
    assert body["explanation"]["typeName"] == "human"
    assert body["url"].endswith("/gpt2-small/6-res-jb/200")
    assert anon.post("/api/explanation/new", payload, format="json").status_code == 401


@pytest.mark.parametrize(("change", "status"), [({"index": 1}, 404), ({"explanation": "x" * 513}, 400),
                                                ({"explanationModel": "nope"}, 400)])
def test_explanation_new_errors(alice_api, catalog, change, status) -> None:
    feature = {"modelId": "gpt2-small", "layer": "6-res-jb", "index": 200, "explanation": "x", **change}
    response = alice_api.post("/api/explanation/new", {"feature": feature}, format="json")
    assert response.status_code == status
    assert response.json()["message"]
