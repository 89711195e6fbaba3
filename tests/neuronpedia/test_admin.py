from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_every_admin_changelist_and_add_page_renders(client, admin_user, catalog, model) -> None:
    client.force_login(admin_user)
    info = (model._meta.app_label, model._meta.model_name)
    assert client.get(reverse("admin:{}_{}_changelist".format(*info))).status_code == 200
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    if admin.site._registry[model].has_add_permission(request):  # panels may have no add form
        assert client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 200


def test_admin_change_page_renders_for_a_feature(client, admin_user, catalog) -> None:
    client.force_login(admin_user)
    url = reverse("admin:features_feature_change", args=[catalog["feature"].pk])
    response = client.get(url)
    assert response.status_code == 200
    assert b"Paris" in response.content


def test_admin_requires_staff(client, alice) -> None:
    client.force_login(alice)
    response = client.get(reverse("admin:features_feature_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_provider_key_form_never_renders_the_stored_key(client, admin_user) -> None:
    from autointerp.models import ProviderKey

    key = ProviderKey.objects.create(provider="OPENAI", value="sk-secret-value-1234")
    client.force_login(admin_user)
    response = client.get(reverse("admin:autointerp_providerkey_change", args=[key.pk]))
    assert response.status_code == 200
    assert b"sk-secret-value" not in response.content
