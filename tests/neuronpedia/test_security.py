"""Issue 15, security gaps: API keys capped per user and rate limits counted per user (never per key);
sign-in throttling; jobs readable by their owner and staff only (internals by staff only); unlisted vectors
never listed on the vector source page."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from neuronpedia.accounts import throttle as login_throttle
from neuronpedia.accounts.models import ApiKey
from neuronpedia.accounts.services import create_api_key
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import JobKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings: Any) -> Any:
    settings.NP_RATE_LIMIT_ENABLED = True
    settings.NP_RATE_LIMIT_KEY_PREFIX = f"np:test:{uuid.uuid4().hex}"
    settings.NP_RATE_LIMITS = {"/api": 2}
    return settings


def _api(raw_key: str | None = None, address: str = "10.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    if raw_key:
        client.credentials(HTTP_X_API_KEY=raw_key)
    return client


# --- API keys and rate limits ---------------------------------------------------------------------

def test_api_keys_are_capped_per_user_but_rotation_is_free(alice: Any, settings: Any) -> None:
    settings.NP_API_KEYS_PER_USER = 3
    for name in ("a", "b", "c"):
        create_api_key(user=alice, name=name)
    with pytest.raises(ValidationError, match="already have 3 active API keys"):
        create_api_key(user=alice, name="d")
    create_api_key(user=alice, name="b")  # rotating an existing name
    ApiKey.objects.filter(user=alice, name="a").update(revoked_at="2020-01-01T00:00Z")
    create_api_key(user=alice, name="d")  # after a revocation there is room again
    assert ApiKey.objects.filter(user=alice, revoked_at=None).count() == 3


def test_the_api_key_page_and_command_say_when_the_cap_is_reached(alice: Any, settings: Any) -> None:
    settings.NP_API_KEYS_PER_USER = 1
    client = Client()
    client.force_login(alice)
    assert client.post("/accounts/api-keys/", {"name": "one"}).status_code == 200
    page = client.post("/accounts/api-keys/", {"name": "two"}).content.decode()
    assert "already have 1 active API keys" in page
    with pytest.raises(CommandError, match="already have 1"):
        call_command("create_api_key", "alice", "--name", "three")
    assert ApiKey.objects.filter(user=alice, revoked_at=None).count() == 1


def test_rate_limits_count_per_user_whatever_the_key(alice: Any, bob: Any, limits: Any) -> None:
    first, second = create_api_key(user=alice, name="k1")[1], create_api_key(user=alice, name="k2")[1]
    assert _api(first).post("/api/list/list").status_code == 200
    assert _api(second, "10.0.0.2").post("/api/list/list").status_code == 200
    assert _api(second, "10.0.0.3").post("/api/list/list").status_code == 429  # a third key would not help
    assert _api(create_api_key(user=bob)[1]).post("/api/list/list").status_code == 200


def test_a_session_counts_against_the_same_user_as_their_keys(alice: Any, limits: Any) -> None:
    key = create_api_key(user=alice)[1]
    assert _api(key).post("/api/list/list").status_code == 200
    browser = APIClient(REMOTE_ADDR="10.9.9.9")
    browser.force_login(alice)
    assert browser.post("/api/features", [], format="json").status_code == 200
    assert _api(key).post("/api/list/list").status_code == 429


def test_anonymous_callers_count_per_address(limits: Any) -> None:
    assert [_api(address="10.1.1.1").post("/api/features", [], format="json").status_code
            for _ in range(3)] == [200, 200, 429]
    assert _api(address="10.1.1.2").post("/api/features", [], format="json").status_code == 200


# --- Sign-in throttling ---------------------------------------------------------------------------

@pytest.fixture
def throttle(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings.NP_LOGIN_MAX_FAILURES = 3
    settings.NP_LOGIN_LOCKOUT_SECONDS = 60
    monkeypatch.setattr(login_throttle, "KEY_PREFIX", f"np:test-login-failures:{uuid.uuid4().hex}")
    return settings


def _sign_in(username: str, password: str, address: str = "10.2.0.1", url: str = "/accounts/login/") -> Any:
    return Client(REMOTE_ADDR=address).post(url, {"username": username, "password": password})


def test_sign_in_locks_out_after_repeated_failures(alice: Any, throttle: Any) -> None:
    for _ in range(3):
        assert _sign_in("alice", "wrong").status_code == 200
    refused = _sign_in("alice", "pw-alice")  # the right password, but locked out
    assert refused.status_code == 200
    assert "_auth_user_id" not in refused.wsgi_request.session
    assert "Too many failed sign-in attempts" in refused.content.decode()
    assert _sign_in("alice", "pw-alice", address="10.2.0.2").status_code == 302  # the owner elsewhere


def test_a_success_resets_the_count(alice: Any, throttle: Any) -> None:
    for _ in range(2):
        _sign_in("alice", "wrong")
    assert _sign_in("alice", "pw-alice").status_code == 302
    for _ in range(2):
        _sign_in("alice", "wrong")
    assert _sign_in("alice", "pw-alice").status_code == 302


def test_sign_in_failures_are_counted_in_the_django_cache(alice: Any, throttle: Any) -> None:
    _sign_in("alice", "wrong")
    key = login_throttle._key("alice", RequestFactory().post("/", REMOTE_ADDR="10.2.0.1"))
    assert cache.get(key) == 1
    cache.set(key, 3, timeout=60)  # two more failures, counted by another web process
    refused = _sign_in("alice", "pw-alice")
    assert "Too many failed sign-in attempts" in refused.content.decode()


def test_the_admin_sign_in_is_throttled_too(admin_user: Any, throttle: Any) -> None:
    for _ in range(3):
        _sign_in("root", "wrong", url="/admin/login/")
    refused = _sign_in("root", "pw-root", url="/admin/login/")
    assert refused.status_code == 200
    assert "Too many failed sign-in attempts" in refused.content.decode()


# --- Jobs -------------------------------------------------------------------------------------------

@pytest.fixture
def alices_job(alice: Any) -> Any:
    job = jobs.create_job(kind=JobKind.IMPORT_SOURCE, title="import", requested_by=alice,
                          params={"uri": "/srv/secret/exports/gpt2"})
    jobs.claim_job(job.id)
    jobs.fail_job(job.id, error="FileNotFoundError: /srv/secret/exports/gpt2/config.json")
    return job


def test_job_pages_are_not_readable_anonymously(alices_job: Any) -> None:
    client = Client()
    for url in ("/jobs/", f"/jobs/{alices_job.id}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert client.get(f"/jobs/{alices_job.id}/status/").status_code == 404


def test_jobs_are_visible_to_their_owner_without_internals(alices_job: Any, alice: Any, bob: Any) -> None:
    stranger = Client()
    stranger.force_login(bob)
    assert stranger.get(f"/jobs/{alices_job.id}/").status_code == 404
    assert "import" not in stranger.get("/jobs/").content.decode().split("<h1>Jobs</h1>")[1]
    owner = Client()
    owner.force_login(alice)
    page = owner.get(f"/jobs/{alices_job.id}/").content.decode()
    assert "FileNotFoundError" in page
    assert "/srv/secret" not in page
    assert "Parameters" not in page
    assert f"/jobs/{alices_job.id}/" in owner.get("/jobs/").content.decode()


def test_staff_see_every_job_with_its_internals(alices_job: Any, admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/jobs/{alices_job.id}/").content.decode()
    assert "Parameters" in page
    assert "/srv/secret/exports/gpt2/config.json" in page


def test_a_system_jobs_progress_fragment_shows_progress_only(alice: Any) -> None:
    job = jobs.create_job(kind=JobKind.TRAIN_DEMO_SAE, params={"dir": "/srv/secret"})
    jobs.claim_job(job.id)
    jobs.record_progress(job.id, done=2, total=4)
    jobs.fail_job(job.id, error="OSError at /srv/secret/weights")
    fragment = Client().get(f"/jobs/{job.id}/status/").content.decode()
    assert 'value="50.0"' in fragment
    assert "/srv/secret" not in fragment
    assert "OSError" not in fragment


def test_redact_paths_hides_paths_and_urls() -> None:
    from neuronpedia.jobs.templatetags.job_tags import redact_paths

    text = "read /home/np/.data/x.npz, s3://bucket/key and C:\\data\\f failed (3/4 done)"
    assert redact_paths(text) == "read …, … and … failed (3/4 done)"


# --- Unlisted vectors ------------------------------------------------------------------------------

@pytest.fixture
def vectors(alice: Any, bob: Any) -> dict[str, Any]:
    from features import services
    from tests import factories

    model = factories.make_model("vec-model", layers=2, dimension=4)
    mine = services.create_vector(user=alice, model=model, layer=0, hook_type="hook_resid_pre",
                                  values=[0.1] * 4, label="alice secret vector", default_steer_strength=1.0)
    theirs = services.create_vector(user=bob, model=model, layer=0, hook_type="hook_resid_pre",
                                    values=[0.2] * 4, label="bob secret vector", default_steer_strength=1.0)
    return {"model": model, "alice": mine, "bob": theirs, "url": f"/{model.id}/{mine.source.name}/"}


def _indices(html: str, *features: Any) -> set[int]:
    return {f.index for f in features if f"/{f.index}\"" in html}


def test_the_vector_source_page_lists_only_the_viewers_own_vectors(vectors: dict[str, Any], alice: Any,
                                                                   admin_user: Any) -> None:
    both = (vectors["alice"], vectors["bob"])
    assert _indices(Client().get(vectors["url"]).content.decode(), *both) == set()
    client = Client()
    client.force_login(alice)
    assert _indices(client.get(vectors["url"]).content.decode(), *both) == {vectors["alice"].index}
    client.force_login(admin_user)
    assert _indices(client.get(vectors["url"]).content.decode(), *both) == {f.index for f in both}


def test_prev_next_never_walks_into_someone_elses_vector(vectors: dict[str, Any], alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    mine, theirs = vectors["alice"], vectors["bob"]
    direction = "next" if theirs.index > mine.index else "prev"
    response = client.get(f"{vectors['url']}{mine.index}/{direction}")
    assert response.status_code == 302
    assert str(theirs.index) not in response["Location"].split("?")[0].rsplit("/", 1)[-1]
    assert response["Location"].endswith(f"?end={direction}")


def test_an_unlisted_vector_is_still_reachable_by_its_link(vectors: dict[str, Any]) -> None:
    assert Client().get(vectors["bob"].get_absolute_url()).status_code == 200
