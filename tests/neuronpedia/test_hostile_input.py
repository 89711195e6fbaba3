"""Issue 15: hostile input never answers 5xx. Deeply nested JSON on every endpoint that parses a body, NUL
in any path segment or query value, unreversible jump targets and integers past bigint in query strings
answer 4xx (JSON under /api, the site's HTML page elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000


def _api_post_paths() -> list[str]:
    """Every concrete /api route (the URLconf, not a hand-kept list, so new apps' endpoints are covered);
    path parameters are filled with plausible values."""
    paths = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            route = str(p.pattern).lstrip("^").rstrip("$")
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + route)
            elif isinstance(p, URLPattern):
                full = prefix + route
                if full.startswith("api/") and "(?P<rest>" not in full and "schema" not in full \
                        and "docs" not in full and "redoc" not in full:
                    paths.append("/" + _fill(full))

    walk(get_resolver().url_patterns, "")
    return sorted(set(paths))


def _fill(route: str) -> str:
    import re

    route = route.replace("(?:/)?", "").removesuffix("/?")
    route = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "1" if "id" in m.group(1) or "index" in m.group(1)
                   else "x", route)
    while "(?P<" in route:  # a regex group: replace it, up to its balanced closing parenthesis, by "1"
        start = route.index("(?P<")
        depth, end = 0, start
        for end in range(start, len(route)):
            depth += {"(": 1, ")": -1}.get(route[end], 0)
            if depth == 0:
                break
        route = route[:start] + "1" + route[end + 1:]
    return route


def test_the_api_has_the_endpoints_the_issue_counts() -> None:
    assert len(_api_post_paths()) >= 30


@pytest.mark.django_db
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_is_a_400_on_every_api_endpoint(body: str, alice: Any) -> None:
    from neuronpedia.accounts.services import create_api_key

    key = create_api_key(user=alice)[1]
    client = Client(raise_request_exception=False, HTTP_X_API_KEY=key)
    failures = []
    for path in _api_post_paths():
        savepoint = transaction.savepoint()  # a failing request must not abort the others' transaction
        response = client.post(path, body, content_type="application/json")
        transaction.savepoint_rollback(savepoint)
        if response.status_code >= 500 or response.headers["Content-Type"] != "application/json":
            failures.append((path, response.status_code, response.content[:120]))
    assert failures == []


@pytest.mark.django_db
def test_deep_json_message_says_why(alice: Any) -> None:
    from neuronpedia.accounts.services import create_api_key

    client = Client(HTTP_X_API_KEY=create_api_key(user=alice)[1])
    response = client.post("/api/list/new", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["message"]


def test_moderately_nested_json_still_parses() -> None:
    from neuronpedia.parsers import MAX_JSON_DEPTH, check_depth

    check_depth([[[1.0] * 3]] * 2)
    nested: Any = 1
    for _ in range(MAX_JSON_DEPTH):
        nested = [nested]
    check_depth(nested)
    with pytest.raises(ValueError, match="nested"):
        check_depth([nested])


NUL_URLS = [
    "/api/feature/{m}/a%00b/0", "/api/feature/{m}/{s}/0%00", "/api/feature/a%00/{s}/0",
    "/api/source-set/{m}/a%00b", "/api/source-set/a%00b/x", "/api/explanation/1%00",
    "/{m}/a%00b/", "/{m}/a%00b/0", "/{m}/a%00b/0/next", "/{m}/a%00b/0/prev", "/{m}/a%00b/random",
    "/{m}/a%00b/0/panel/lists", "/{m}/a%00b/0/panel/live", "/{m}/a%00b/0/panel/similar",
    "/{m}/a%00b/0/autointerp", "/a%00b/", "/a%00b/random", "/embed/{m}/a%00b/0", "/steer/a%00b",
    "/embed/steer/a%00b", "/search-explanations?model=a%00b", "/search-explanations?q=a%00b",
    "/search-explanations?q=cat&model={m}&source=a%00b", "/jump?model=a%00b",
    "/jump?model={m}&source=a%00b&index=1", "/steer?model=a%00b", "/steer?model={m}&features={s}:1%00",
    "/search?model=a%00b", "/search-topk?model=a%00b", "/ui/feature-labels?model=a%00b&keys=x:1",
    "/lists/?q=a%00", "/jobs/?kind=a%00", "/random?x=%00", "/%00", "/api/%00", "/?model=a%00b",
    "/{m}/{s}/?after=1%00", "/{m}/{s}/?sort=max&after=1.0%00:1", "/accounts/login/?next=/%00",
]

OVERFLOW_URLS = [
    "/search-explanations?q=abc&offset=999999999999999999999", "/search-explanations?q=abc&offset=%C2%B2",
    "/jump?model=a%20b&source=x&index=1", "/jump?model={m}&source=x/y&index=1", "/jump?model={m}&source=x/y",
    "/jump?model=a%20b", "/jump?model={m}&source={s}&index=%C2%B2",
    "/jump?model={m}&source={s}&index=999999999999999999999",
    "/{m}/{s}/999999999999999999999", "/{m}/{s}/999999999999999999999/next",
    "/{m}/{s}/999999999999999999999/prev", "/embed/{m}/{s}/999999999999999999999",
    "/{m}/{s}/?after=999999999999999999999", "/{m}/{s}/?before=-999999999999999999999",
    "/{m}/{s}/?sort=max&after=1e999:999999999999999999999", "/{m}/{s}/?sort=max&after=nan:1",
    "/lists/999999999999999999999/", "/embed/list/999999999999999999999",
    "/ui/feature-labels?model={m}&keys={s}:999999999999999999999,{s}:%C2%B2",
    "/steer?model={m}&features={s}:999999999999999999999", "/steer?model={m}&features={s}:%C2%B2",
    "/jobs/999999999999999999999/", "/api/feature/{m}/{s}/999999999999999999999",
    "/api/explanation/999999999999999999999",
    "/search-explanations?q=abc&min_score=abc", "/search-explanations?q=abc&min_score=nan",
    "/search-explanations?q=abc&min_score=1e999", "/search-explanations?min_score=-inf",
    "/steer?model={m}&features={s}:1:nan", "/steer?model={m}&features={s}:1:1e999",
]


def _expand(url: str, catalog: dict[str, Any]) -> str:
    return url.format(m=catalog["model"].id, s=catalog["source"].name)


@pytest.mark.django_db
@pytest.mark.parametrize("url", NUL_URLS)
def test_nul_anywhere_in_the_url_is_400(url: str, catalog: dict[str, Any], alice: Any) -> None:
    for client in (Client(raise_request_exception=False), _logged_in(alice)):
        response = client.get(_expand(url, catalog))
        assert response.status_code == 400, (url, response.status_code, response.content[:300])
        _assert_error_body(url, response)


@pytest.mark.django_db
@pytest.mark.parametrize("url", OVERFLOW_URLS)
def test_unparseable_or_huge_numbers_are_never_5xx(url: str, catalog: dict[str, Any], alice: Any) -> None:
    for client in (Client(raise_request_exception=False), _logged_in(alice)):
        response = client.get(_expand(url, catalog))
        assert response.status_code < 500, (url, response.status_code, response.content[:300])
        if response.status_code >= 400:
            _assert_error_body(url, response)


def _logged_in(user: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _assert_error_body(url: str, response: Any) -> None:
    if url.startswith("/api/"):
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["message"]
    else:
        assert response.headers["Content-Type"].startswith("text/html")
        assert b"Traceback" not in response.content


@pytest.mark.django_db
def test_nul_answers_400_with_a_message(catalog: dict[str, Any]) -> None:
    client = Client()
    api = client.get(f"/api/feature/{catalog['model'].id}/a%00b/0")
    assert api.status_code == 400
    assert "NUL" in api.json()["message"]
    page = client.get("/search-explanations?model=a%00b")
    assert page.status_code == 400
    assert b"NUL" in page.content


@pytest.mark.django_db
def test_nul_in_a_form_or_json_body_is_a_400(catalog: dict[str, Any], alice: Any) -> None:
    from features.models import FeatureList
    from neuronpedia.accounts.services import create_api_key

    client = Client(raise_request_exception=False, HTTP_X_API_KEY=create_api_key(user=alice)[1])
    response = client.post("/api/list/new", {"name": "a\x00b", "description": "x"},
                           content_type="application/json")
    assert response.status_code == 400
    assert response.json()["message"]
    client.force_login(alice)
    response = client.post("/lists/new", "name=a%00b&description=&visibility=PUBLIC",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert not FeatureList.objects.exists()


@pytest.mark.django_db
def test_jump_to_an_unreversible_target_is_404(catalog: dict[str, Any]) -> None:
    client = Client()
    assert client.get("/jump?model=a%20b&source=x&index=1").status_code == 404
    assert client.get(f"/jump?model={catalog['model'].id}&source=x/y&index=1").status_code == 404
    ok = client.get(f"/jump?model={catalog['model'].id}&source={catalog['source'].name}&index=200")
    assert ok.status_code == 302
    assert ok["Location"] == catalog["feature"].get_absolute_url()


@pytest.mark.django_db
def test_search_offset_past_the_limit_is_400() -> None:
    response = Client().get("/search-explanations?q=abc&offset=999999999999999999999")
    assert response.status_code == 400
    assert b"offset" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["abc", "nan", "inf", "1e999", "0.5x", "%C2%B2"])
def test_search_min_score_that_is_not_a_finite_number_is_400(value: str) -> None:
    response = Client(raise_request_exception=False).get(f"/search-explanations?q=abc&min_score={value}")
    assert response.status_code == 400
    assert b"min_score must be a number" in response.content


@pytest.mark.django_db
def test_search_min_score_that_is_a_number_is_accepted() -> None:
    from autointerp.feature_pages import _min_score

    assert _min_score("") is None
    assert _min_score(" 0.25 ") == 0.25
    assert _min_score("0") == 0.0
    response = Client(raise_request_exception=False).get("/search-explanations?min_score=0.5")
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/features", [{"modelId": "gpt2-small", "layer": 6, "index": 0}], "layer"),
    ("/api/list/new", {"name": "x", "defaultTestText": 123}, "defaultTestText"),
    ("/api/list/new-with-features", {"name": "x", "features": [
        {"modelId": "gpt2-small", "layer": "6-res-jb", "index": 0, "description": 5}]}, "description"),
    ("/api/vector/new", {"modelId": "gpt2-small", "layerNumber": 0, "hookType": "hook_resid_pre",
                         "vector": [True] * 576, "vectorLabel": "v"}, "vector"),
    ("/api/steer", {"modelId": "gpt2-small", "prompt": 123, "features": [
        {"modelId": "gpt2-small", "layer": "6-res-jb", "index": 0, "strength": 1}], "temperature": 0.5,
        "n_tokens": 4, "seed": 1, "strength_multiplier": 1}, "prompt"),
    ("/api/list/new", {"name": "\u001e \u3000"}, "name"),
])
def test_the_schema_mismatches_schemathesis_found_are_refused(path: str, body: Any, field: str,
                                                               catalog: dict[str, Any], alice: Any) -> None:
    """Issue 15: integers for strings, booleans for numbers, blanks: refused with 400 naming the field
    (they were accepted, or refused for a reason the schema did not state)."""
    from neuronpedia.accounts.services import create_api_key

    client = Client(raise_request_exception=False, HTTP_X_API_KEY=create_api_key(user=alice)[1])
    response = client.post(path, body, content_type="application/json")
    assert response.status_code == 400, (path, response.status_code, response.content[:300])
    assert field in response.json()["message"]
