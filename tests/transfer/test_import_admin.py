"""The admin import panel: listing at the base, Import / Re-sync buttons, job page, cancel, export action."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import override_settings

from features.models import Source
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.lib.jobs import JobStatus
from transfer.importer.synthetic import SyntheticSpec, write_source
from transfer.tasks import import_source_task

pytestmark = pytest.mark.django_db
SPEC = SyntheticSpec(num_features=4, acts_per_feature=1, context=4, batch_size=4)
PANEL = "/admin/features/importpanel/"


@pytest.fixture
def base(tmp_path: Path) -> str:
    write_source(tmp_path, SPEC)
    write_source(tmp_path, SyntheticSpec(num_features=4, acts_per_feature=1, context=4, layer=7),
                 with_config=False)
    with override_settings(NP_IMPORT_BASE=str(tmp_path)):
        yield str(tmp_path)


def test_admin_index_links_to_the_panel(client, admin_user) -> None:
    client.force_login(admin_user)
    assert PANEL in client.get("/admin/").content.decode()


def test_panel_lists_models_sets_and_sources_at_the_base(client, admin_user, base: str) -> None:
    client.force_login(admin_user)
    body = client.get(PANEL, {"model": "gpt2-small"}).content.decode()
    assert "gpt2-small" in body
    assert "res-jb (2 sources)" in body
    assert "6-res-jb" in body
    assert "7-res-jb" in body
    assert "Import / Re-sync set" in body


def test_import_button_queues_a_job_on_commit_and_its_page_shows_progress_and_result(
        client, admin_user, base: str, django_capture_on_commit_callbacks) -> None:
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(PANEL + "start/", {"what": "source", "model": "gpt2-small",
                                                   "source": "6-res-jb", "base": base})
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{PANEL}job/{job.id}/"
    assert len(callbacks) == 1
    assert json.loads(json.dumps(job.params))["sources"] == ["6-res-jb"]
    assert f'hx-get="/jobs/{job.id}/status/"' in client.get(response["Location"]).content.decode()
    import_source_task(job.id)
    body = client.get(response["Location"]).content.decode()
    assert "Done" in body
    assert "&#x27;ok&#x27;: True" in body
    assert "Re-sync" in client.get(PANEL, {"model": "gpt2-small"}).content.decode()


def test_set_button_imports_every_source_of_the_set(client, admin_user, base: str) -> None:
    client.force_login(admin_user)
    client.post(PANEL + "start/", {"what": "set", "model": "gpt2-small", "set": "res-jb", "base": base})
    job = Job.objects.get()
    import_source_task(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert sorted(job.result["sources"]) == ["6-res-jb", "7-res-jb"]


def test_cancel_button_cancels_a_queued_job(client, admin_user, base: str) -> None:
    client.force_login(admin_user)
    client.post(PANEL + "start/", {"what": "source", "model": "gpt2-small", "source": "6-res-jb",
                                   "base": base})
    job = Job.objects.get()
    client.post(f"{PANEL}job/{job.id}/cancel/")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    import_source_task(job.id)  # a late message does nothing
    assert not Source.objects.exists()


def test_an_unreachable_base_is_shown_not_a_500(client, admin_user) -> None:
    client.force_login(admin_user)
    response = client.get(PANEL, {"base": "/nonexistent/folder"})
    assert response.status_code == 200
    assert "does not exist" in response.content.decode()


def test_panel_is_for_superusers_only(client, django_user_model) -> None:
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(PANEL).status_code == 403
    assert client.post(PANEL + "start/", {"what": "config"}).status_code == 403


def test_source_admin_export_action_queues_an_export_job(client, admin_user, catalog) -> None:
    client.force_login(admin_user)
    client.post("/admin/features/source/", {"action": "export_sources",
                                             "_selected_action": [catalog["source"].id]})
    assert Job.objects.get().kind == JobKind.EXPORT_SOURCE
