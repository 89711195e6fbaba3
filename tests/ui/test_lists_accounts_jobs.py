"""Lists, accounts (sign-up, API keys) and job pages through the Django test client."""

from __future__ import annotations

from unittest import mock

import pytest

from features.models import FeatureList, ListItem
from neuronpedia.accounts.models import ApiKey
from neuronpedia.accounts.services import user_for_raw_key
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import JobKind

pytestmark = pytest.mark.django_db


def test_lists_panel_for_anonymous_shows_public_lists_and_sign_in(client, rich) -> None:
    body = client.get("/gpt2-small/6-res-jb/201/panel/lists").content.decode()
    assert "geography" in body
    assert "Sign in" in body
    assert "add-to-list" not in body


def test_add_to_list_from_the_feature_page_with_htmx(client, rich, alice) -> None:
    client.force_login(alice)
    body = client.get("/gpt2-small/6-res-jb/200/panel/lists").content.decode()
    assert 'class="add-to-list"' in body
    feature = rich["feature"]
    form = {"list": rich["list"].pk, "feature": feature.pk, "note": "fr"}
    response = client.post("/lists/add-feature", form,
                           HTTP_HX_REQUEST="true")
    assert "Added to “geography”" in response.content.decode()
    assert ListItem.objects.get(feature_list=rich["list"], feature=feature).description == "fr"


def test_strangers_cannot_add_to_or_edit_someone_elses_list(client, rich, bob) -> None:
    client.force_login(bob)
    url = f"/lists/{rich['list'].pk}"
    assert client.post("/lists/add-feature", {"list": rich["list"].pk,
                                              "feature": rich["feature"].pk}).status_code == 404
    assert client.get(url + "/edit").status_code == 404
    assert client.post(url + "/delete").status_code == 404
    assert client.get(url + "/").status_code == 200  # public: readable


def test_private_list_is_404_for_others(client, rich, bob) -> None:
    FeatureList.objects.filter(pk=rich["list"].pk).update(visibility="PRIVATE")
    client.force_login(bob)
    assert client.get(f"/lists/{rich['list'].pk}/").status_code == 404
    assert client.get(f"/embed/list/{rich['list'].pk}").status_code == 404


def test_create_list_with_a_feature_then_edit_and_delete(client, rich, alice) -> None:
    client.force_login(alice)
    response = client.post(f"/lists/new?feature={rich['feature'].pk}",
                           {"name": "france", "description": "d", "visibility": "PRIVATE",
                            "default_test_text": ""})
    feature_list = FeatureList.objects.get(name="france")
    assert response.url == f"/lists/{feature_list.pk}/"
    assert feature_list.visibility == "PRIVATE"
    assert feature_list.items.count() == 1
    client.post(f"/lists/{feature_list.pk}/edit", {"name": "France!", "description": "",
                                                   "visibility": "PUBLIC",
                                                   "default_test_text": "hi"})
    feature_list.refresh_from_db()
    assert (feature_list.name, feature_list.visibility) == ("France!", "PUBLIC")
    client.post(f"/lists/{feature_list.pk}/delete")
    assert not FeatureList.objects.filter(pk=feature_list.pk).exists()


def test_list_creation_needs_sign_in(client, rich) -> None:
    assert client.get("/lists/new").url.startswith("/accounts/login/")


def test_list_page_mini_dashboards_add_note_remove(client, rich, alice) -> None:
    client.force_login(alice)
    url = f"/lists/{rich['list'].pk}"
    body = client.get(url + "/").content.decode()
    assert "Italian cities" in body
    assert 'class="mini card"' in body
    assert 'value="italy"' in body
    form = {"model": "gpt2-small", "source": "6-res-jb", "index": 200, "note": "x"}
    added = client.post(url + "/add", form,
                        HTTP_HX_REQUEST="true").content.decode()
    assert 'id="items"' in added
    assert "mentions of France and Paris" in added
    assert "<html" not in added
    missing = client.post(url + "/add", {"model": "gpt2-small", "source": "6-res-jb", "index": 9},
                          HTTP_HX_REQUEST="true").content.decode()
    assert "No feature gpt2-small/6-res-jb/9" in missing
    client.post(f"{url}/note/{rich['feature'].pk}", {"note": "paris!"}, HTTP_HX_REQUEST="true")
    assert ListItem.objects.get(feature=rich["feature"]).description == "paris!"
    client.post(f"{url}/remove/{rich['feature'].pk}", HTTP_HX_REQUEST="true")
    assert not ListItem.objects.filter(feature=rich["feature"]).exists()


def test_list_index_and_embed(client, rich, alice) -> None:
    assert "geography" in client.get("/lists/").content.decode()
    response = client.get(f"/embed/list/{rich['list'].pk}")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    assert 'class="topbar"' not in response.content.decode()


def test_signup_logs_in_and_leads_to_api_keys(client, db) -> None:
    response = client.post("/accounts/signup/", {"username": "carol", "password1": "a-Long-pass-91",
                                                 "password2": "a-Long-pass-91"})
    assert response.url == "/accounts/api-keys/"
    assert "No keys yet" in client.get("/accounts/api-keys/").content.decode()


def test_api_key_is_shown_once_and_works(client, alice) -> None:
    client.force_login(alice)
    body = client.post("/accounts/api-keys/", {"name": "laptop"}).content.decode()
    key = ApiKey.objects.get(user=alice, name="laptop")
    raw = body.split('id="raw-key">')[1].split("<")[0]
    assert raw.startswith(key.prefix)
    assert user_for_raw_key(raw) == alice
    again = client.get("/accounts/api-keys/").content.decode()
    assert raw not in again
    assert key.prefix in again
    client.post("/accounts/api-keys/", {"name": "laptop"})  # rotate
    assert user_for_raw_key(raw) is None
    client.post(f"/accounts/api-keys/{ApiKey.objects.get(user=alice, revoked_at=None).pk}/revoke/")
    assert not ApiKey.objects.filter(user=alice, revoked_at=None).exists()


def test_api_key_page_needs_sign_in(client, db) -> None:
    assert client.get("/accounts/api-keys/").url.startswith("/accounts/login/")


def test_job_pages_show_kind_specific_results(client, admin_user) -> None:
    client.force_login(admin_user)
    job = jobs.create_job(kind=JobKind.GENERATE_DASHBOARDS, title="dash", model_id_ref="m", source_ref="0-x")
    jobs.claim_job(job.id)
    jobs.finish_job(job.id, result={"features": 16, "dead": 2, "activations": 300, "sequences": 8,
                                    "tokens": 512, "evals": {"l0": 3.5}})
    body = client.get(f"/jobs/{job.id}/").content.decode()
    assert "Dead</dt><dd>2</dd>" in body
    assert 'href="/m/0-x/"' in body
    auto = jobs.create_job(kind=JobKind.AUTOINTERP_BATCH, title="ai")
    jobs.claim_job(auto.id)
    jobs.finish_job(auto.id, result={"explained": 5, "errors": ["boom"]})
    body = client.get(f"/jobs/{auto.id}/").content.decode()
    assert "explained" in body
    assert "boom" in body


def test_finished_job_status_stops_polling_with_286(client, db) -> None:
    job = jobs.create_job(kind=JobKind.NOOP)
    assert client.get(f"/jobs/{job.id}/status/").status_code == 200
    jobs.claim_job(job.id)
    jobs.finish_job(job.id)
    assert client.get(f"/jobs/{job.id}/status/").status_code == 286


def test_staff_can_cancel_and_resume_jobs_others_cannot(client, admin_user, alice,
                                                        django_capture_on_commit_callbacks) -> None:
    job = jobs.create_job(kind=JobKind.AUTOINTERP_BATCH, title="ai")
    jobs.claim_job(job.id)
    client.force_login(admin_user)
    polled = client.get(f"/jobs/{job.id}/status/?actions=1").content.decode()
    assert 'id="job-cancel"' in polled
    assert f'hx-get="/jobs/{job.id}/status/?actions=1"' in polled
    client.force_login(alice)
    assert client.post(f"/jobs/{job.id}/cancel/").status_code == 302  # to the admin login
    assert 'id="job-cancel"' not in client.get(f"/jobs/{job.id}/").content.decode()
    client.force_login(admin_user)
    assert 'id="job-cancel"' in client.get(f"/jobs/{job.id}/").content.decode()
    client.post(f"/jobs/{job.id}/cancel/")
    jobs.mark_cancelled(job.id)  # what the running task does at its next progress write
    assert 'id="job-resume"' in client.get(f"/jobs/{job.id}/").content.decode()
    # the page polls its status partial with the actions: once the job ended, the poll drops Cancel
    polled = client.get(f"/jobs/{job.id}/status/?actions=1").content.decode()
    assert 'id="job-resume"' in polled
    assert 'id="job-cancel"' not in polled
    # the same partial elsewhere (home banner, admin import page) carries no buttons
    assert 'id="job-resume"' not in client.get(f"/jobs/{job.id}/status/").content.decode()
    with (mock.patch("autointerp.tasks.autointerp_batch_task.delay") as delay,
          django_capture_on_commit_callbacks(execute=True)):
        client.post(f"/jobs/{job.id}/resume/")
    job.refresh_from_db()
    assert job.status == "QUEUED"
    delay.assert_called_once_with(job.id)
