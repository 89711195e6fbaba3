from __future__ import annotations

import pytest
import redis
from django.core.management import call_command

from neuronpedia import ratelimit
from neuronpedia.lib.env import ConfigError

pytestmark = pytest.mark.django_db


def test_rate_limit_answers_429_with_retry_after(alice_api, settings) -> None:
    settings.NP_RATE_LIMITS = {**settings.NP_RATE_LIMITS, "/api/list/list": 2}
    remaining = [alice_api.post("/api/list/list")["x-limit-remaining"] for _ in range(2)]
    refused = alice_api.post("/api/list/list")
    assert remaining == ["1", "0"]
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= settings.NP_RATE_LIMIT_WINDOW_SECONDS
    assert refused.json()["endpoint"] == "/api/list/list"
    assert "Rate limit" in refused.json()["message"]


def test_rate_limits_count_per_key_and_per_ip(alice_api, bob_api, anon, settings) -> None:
    settings.NP_RATE_LIMITS = {"/api": 1}
    assert alice_api.post("/api/list/list").status_code == 200
    assert alice_api.post("/api/list/list").status_code == 429
    assert bob_api.post("/api/list/list").status_code == 200
    assert anon.post("/api/list/get", {"listId": "1"}, format="json").status_code == 404
    assert anon.post("/api/list/get", {"listId": "1"}, format="json").status_code == 429


def test_longest_prefix_wins_and_zero_is_unlimited(anon, settings) -> None:
    settings.NP_RATE_LIMITS = {"/api": 1, "/api/features": 0}
    for _ in range(3):
        response = anon.post("/api/features", [], format="json")
        assert response.status_code == 200
        assert "x-limit-remaining" not in response


def test_limiter_fails_open_when_redis_is_down(anon, settings, monkeypatch) -> None:
    settings.NP_RATE_LIMITS = {"/api": 1}

    def broken(**kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(ratelimit, "hit", broken)
    assert [anon.post("/api/features", [], format="json").status_code for _ in range(2)] == [200, 200]


def test_parse_rate_limits_merges_over_defaults() -> None:
    limits = ratelimit.parse_rate_limits(" /api/steer=500, /api/list/=7 ")
    assert (limits["/api/steer"], limits["/api/list"], limits["/api/model/new"]) == (500, 7, 5)
    for bad in ["/api/steer", "api=1", "/api=x", "/api=-1"]:
        with pytest.raises(ConfigError):
            ratelimit.parse_rate_limits(bad)


def test_errors_are_json_never_500(anon, catalog) -> None:
    bad_json = anon.generic("POST", "/api/list/get", "{not json", content_type="application/json")
    assert bad_json.status_code == 400
    assert bad_json.json()["message"]
    wrong_type = anon.post("/api/vector/get", ["x"], format="json")
    assert wrong_type.status_code == 400
    assert wrong_type.json()["message"]
    nan = anon.generic("POST", "/api/features", '[{"modelId": "a", "layer": "1-a", "index": NaN}]',
                       content_type="application/json")
    assert nan.status_code == 400


def test_invalid_api_key_is_401_json(anon) -> None:
    anon.credentials(HTTP_X_API_KEY="np_wrong")
    response = anon.post("/api/list/list")
    assert response.status_code == 401
    assert "x-api-key" in response.json()["message"]


def test_openapi_schema_validates_without_warnings(tmp_path) -> None:
    call_command("spectacular", "--file", str(tmp_path / "schema.yml"), "--validate", "--fail-on-warn")
    text = (tmp_path / "schema.yml").read_text()
    assert "/api/list/add-features:" in text
    assert "x-api-key" in text


def test_docs_are_served_without_a_cdn(anon) -> None:
    assert anon.get("/api/schema/").status_code == 200
    for path in ("/api/docs/", "/api/redoc/"):
        html = anon.get(path).content.decode()
        assert "drf_spectacular_sidecar" in html, path
        assert "cdn.jsdelivr" not in html, path


def test_made_up_keys_count_against_the_caller_ip(anon, settings) -> None:
    settings.NP_RATE_LIMITS = {"/api": 1}
    anon.credentials(HTTP_X_API_KEY="np_made-up-1")
    assert anon.post("/api/list/list").status_code == 401
    anon.credentials(HTTP_X_API_KEY="np_made-up-2")
    assert anon.post("/api/list/list").status_code == 429


def test_allow_listed_keys_get_the_higher_tier(alice, bob_api, settings) -> None:
    from neuronpedia.accounts.services import create_api_key

    settings.NP_RATE_LIMITS = {"/api": 100, "/api/list/list": 1}
    settings.NP_RATE_LIMITS_HIGHER = {"/api": 100, "/api/list/list": 3}
    key, raw = create_api_key(user=alice)
    key.higher_limits = True
    key.save()
    from rest_framework.test import APIClient

    higher = APIClient()
    higher.credentials(HTTP_X_API_KEY=raw)
    assert [higher.post("/api/list/list").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [bob_api.post("/api/list/list").status_code for _ in range(2)] == [200, 429]


def test_higher_tier_defaults_follow_neuronpedia_and_never_go_below_normal(settings) -> None:
    assert settings.NP_RATE_LIMITS_HIGHER["/api/steer"] == 1_000
    assert settings.NP_RATE_LIMITS_HIGHER["/api/explanation/search"] == 3_000
    assert settings.NP_RATE_LIMITS_HIGHER["/api/search-all"] == settings.NP_RATE_LIMITS["/api/search-all"]
    assert all(settings.NP_RATE_LIMITS_HIGHER[p] >= n for p, n in settings.NP_RATE_LIMITS.items() if n)


def test_create_api_key_command_can_allow_list_the_key(alice, capsys) -> None:
    from neuronpedia.accounts.models import ApiKey

    call_command("create_api_key", "alice", "--name", "bulk", "--higher-limits")
    assert "higher rate-limit tier" in capsys.readouterr().err
    assert ApiKey.objects.get(user=alice, name="bulk").higher_limits


def test_cors_preflight_and_headers_on_api_responses(anon, settings) -> None:
    preflight = anon.options("/api/list/list", HTTP_ORIGIN="https://notebook.example",
                             HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                             HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key, content-type")
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "x-api-key" in preflight["Access-Control-Allow-Headers"]
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in preflight

    settings.NP_RATE_LIMITS = {"/api": 1}
    anon.post("/api/features", [], format="json", HTTP_ORIGIN="https://notebook.example")
    refused = anon.post("/api/features", [], format="json", HTTP_ORIGIN="https://notebook.example")
    assert refused.status_code == 429  # errors carry the headers too, so a browser client can read them
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert "retry-after" in refused["Access-Control-Expose-Headers"]


def test_cors_with_an_origin_list_and_pages_outside_the_api(anon, client, settings) -> None:
    settings.CORS_ALLOW_ALL_ORIGINS, settings.CORS_ALLOWED_ORIGINS = False, ["https://allowed.example"]
    ok = anon.post("/api/features", [], format="json", HTTP_ORIGIN="https://allowed.example")
    assert ok["Access-Control-Allow-Origin"] == "https://allowed.example"
    assert "origin" in ok["Vary"].lower()
    other = anon.post("/api/features", [], format="json", HTTP_ORIGIN="https://other.example")
    assert "Access-Control-Allow-Origin" not in other
    assert "Access-Control-Allow-Origin" not in client.get("/", HTTP_ORIGIN="https://allowed.example")
