from __future__ import annotations

import pytest

from features.models import FeatureList, ListItem, Visibility
from tests import factories

pytestmark = pytest.mark.django_db
F200 = {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "200"}


@pytest.fixture
def alice_list(alice_api, catalog) -> str:
    return alice_api.post("/api/list/new", {"name": "mine", "description": "d"}, format="json").json()["id"]


def test_list_lifecycle_for_the_owner(alice_api, alice_list) -> None:
    added = alice_api.post("/api/list/add-features", {"listId": alice_list, "featuresToAdd": [
        {**F200, "description": "capital"}]}, format="json").json()
    assert [(i["modelId"], i["layer"], i["index"]) for i in added] == [("gpt2-small", "6-res-jb", "200")]
    alice_api.post("/api/list/edit-feature", {"listId": alice_list, **F200, "description": "n2"},
                   format="json")
    got = alice_api.post("/api/list/get", {"listId": alice_list}, format="json").json()
    assert (got["name"], got["neurons"][0]["description"]) == ("mine", "n2")
    alice_api.post("/api/list/update", {"listId": alice_list, "name": "renamed"}, format="json")
    assert [x["name"] for x in alice_api.post("/api/list/list", format="json").json()] == ["renamed"]
    removed = alice_api.post("/api/list/remove", {"listId": alice_list, **F200}, format="json")
    assert removed.status_code == 200
    assert not ListItem.objects.exists()
    assert alice_api.post("/api/list/delete", {"listId": alice_list}, format="json").status_code == 200
    assert not FeatureList.objects.exists()


def test_adding_twice_is_idempotent(alice_api, alice_list) -> None:
    for _ in range(2):
        alice_api.post("/api/list/add-features", {"listId": alice_list, "featuresToAdd": [F200]},
                       format="json")
    assert ListItem.objects.count() == 1


def test_strangers_read_unlisted_lists_but_cannot_change_them(bob_api, anon, alice_list) -> None:
    assert anon.post("/api/list/get", {"listId": alice_list}, format="json").status_code == 200
    for path, extra in [("update", {"name": "x"}), ("delete", {}),
                        ("add-features", {"featuresToAdd": [F200]}), ("remove", F200),
                        ("edit-feature", {**F200, "description": "x"})]:
        response = bob_api.post(f"/api/list/{path}", {"listId": alice_list, **extra}, format="json")
        assert response.status_code == 403, path


def test_private_lists_are_404_for_strangers(bob_api, anon, alice_api, alice_list) -> None:
    FeatureList.objects.filter(pk=alice_list).update(visibility=Visibility.PRIVATE)
    assert anon.post("/api/list/get", {"listId": alice_list}, format="json").status_code == 404
    assert bob_api.post("/api/list/delete", {"listId": alice_list}, format="json").status_code == 404
    assert alice_api.post("/api/list/get", {"listId": alice_list}, format="json").status_code == 200


def test_list_list_shows_only_own_lists(bob_api, alice_list) -> None:
    assert bob_api.post("/api/list/list", format="json").json() == []


def test_list_writes_need_a_key(anon) -> None:
    response = anon.post("/api/list/new", {"name": "x"}, format="json")
    assert response.status_code == 401
    assert "x-api-key" in response.json()["message"]


@pytest.mark.parametrize(("payload", "status"), [
    ({"featuresToAdd": [F200] * 101}, 400),
    ({"featuresToAdd": [{**F200, "index": 1}]}, 404),
    ({"featuresToAdd": []}, 400),
])
def test_add_features_validates(alice_api, alice_list, payload, status) -> None:
    response = alice_api.post("/api/list/add-features", {"listId": alice_list, **payload}, format="json")
    assert response.status_code == status
    assert response.json()["message"]


@pytest.mark.parametrize("list_id", ["nope", "999999", 12345678901234567890])
def test_unknown_list_is_404(alice_api, list_id) -> None:
    assert alice_api.post("/api/list/get", {"listId": list_id}, format="json").status_code == 404


def test_new_with_features_skips_missing(alice_api, catalog) -> None:
    factories.make_feature(catalog["source"], 9)
    body = alice_api.post("/api/list/new-with-features", {
        "name": "batch", "testText": "hello", "features": [
            F200, {**F200, "index": 9, "description": "nine"}, {**F200, "index": 404}]}, format="json").json()
    feature_list = FeatureList.objects.get(pk=body["id"])
    assert feature_list.default_test_text == "hello"
    assert body["url"].endswith(f"/list/{body['id']}")
    assert sorted(feature_list.items.values_list("feature__index", "description")) == [(9, "nine"), (200, "")]


def test_remove_feature_not_in_list_is_404(alice_api, alice_list) -> None:
    response = alice_api.post("/api/list/remove", {"listId": alice_list, **F200}, format="json")
    assert response.status_code == 404
