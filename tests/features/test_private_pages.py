"""The HTML pages of a PRIVATE source (e.g. an import's hidden `.staging` copy) answer 404 to everyone but
its set's creator and staff, as the API does; public sources stay open to all."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from features.models import Visibility
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_source(alice: Any) -> Any:
    model = factories.make_model("gpt2-small")
    source = factories.make_source(model, layer=6, set_name="res-jb", visibility=Visibility.PRIVATE)
    source.source_set.creator = alice
    source.source_set.save()
    factories.make_activation(factories.make_feature(source, 0), [" a", " b"], [0.0, 1.0])
    return source


def _urls(source: Any) -> list[str]:
    base = f"/{source.model_id}/{source.name}"
    return [f"{base}/", f"{base}/0", f"{base}/0?embed=true", f"/embed{base}/0", f"{base}/0/panel/lists",
            f"{base}/0/panel/extras", f"{base}/0/panel/explanations",
            f"/api/feature/{source.model_id}/{source.name}/0"]


def test_private_source_pages_are_404_to_visitors_and_open_to_their_owner_and_staff(
        private_source: Any, alice: Any, admin_user: Any, django_user_model: Any) -> None:
    urls = _urls(private_source)
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123456")
    for who in (None, bob):
        client = Client()
        if who is not None:
            client.force_login(who)
        for url in urls:
            assert client.get(url).status_code == 404, (who, url)
    for who in (alice, admin_user):
        client = Client()
        client.force_login(who)
        for url in urls:
            assert client.get(url).status_code in (200, 286), (who, url)  # 286: htmx "stop polling"


def test_public_source_pages_stay_open(db: None) -> None:
    source = factories.make_source(factories.make_model("gpt2-small"), layer=6, set_name="res-jb")
    factories.make_feature(source, 0)
    assert Client().get(f"/{source.model_id}/{source.name}/0").status_code == 200
    assert Client().get(f"/{source.model_id}/{source.name}/").status_code == 200
