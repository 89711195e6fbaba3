"""The bucket listing parses S3's ListObjectsV2 XML (recorded shape in fixtures/s3) and follows continuation
tokens to the last page; the admin panel's model -> set -> source listing is built from it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from transfer.importer.catalog import list_sets
from transfer.importer.storage import HttpStore, RemoteFile

FIXTURES = Path(__file__).parent / "fixtures" / "s3"
PAGES = {
    ("v1/gpt2-small/", ""): "dirs-page1.xml",
    ("v1/gpt2-small/", "1Jz+Bd7cEq/0sJ6rAmq9Yw0F3Z8Xj0m2Q5k="): "dirs-page2.xml",
    ("v1/gpt2-small/6-res-jb/features/", ""): "files-page1.xml",
    ("v1/gpt2-small/6-res-jb/features/", "1wQ2v/Hp+aZ9kL3mN0bC7dE5fG=="): "files-page2.xml",
}


@pytest.fixture
def requests() -> list[httpx.Request]:
    return []


@pytest.fixture
def store(requests: list[httpx.Request]) -> HttpStore:
    def bucket(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        params = request.url.params
        assert (params["list-type"], params["delimiter"], request.url.path) == ("2", "/", "/")
        page = PAGES[(params["prefix"], params.get("continuation-token", ""))]
        return httpx.Response(200, content=(FIXTURES / page).read_bytes(),
                              headers={"Content-Type": "application/xml"})

    client = httpx.Client(transport=httpx.MockTransport(bucket))
    return HttpStore("https://neuronpedia-datasets.s3.amazonaws.com/v1", client=client)


def test_folders_are_listed_across_continuation_pages(store: HttpStore, requests: list) -> None:
    assert store.list_dirs("gpt2-small") == ["0-res-jb", "1-res-jb", "10-res-jb", "6-res-jb", "jlens"]
    assert len(requests) == 2
    assert requests[1].url.params["continuation-token"] == "1Jz+Bd7cEq/0sJ6rAmq9Yw0F3Z8Xj0m2Q5k="


def test_files_are_listed_with_sizes_across_pages(store: HttpStore) -> None:
    assert store.list_files("gpt2-small/6-res-jb/features") == [
        RemoteFile("gpt2-small/6-res-jb/features/batch-0.jsonl.gz", 7345121),
        RemoteFile("gpt2-small/6-res-jb/features/batch-1.jsonl.gz", 7290034),
        RemoteFile("gpt2-small/6-res-jb/features/batch-10.jsonl.gz", 7301998),
    ]


@pytest.mark.django_db
def test_the_panel_groups_the_listing_into_sets_in_layer_order(store: HttpStore) -> None:
    sets = list_sets(store, "gpt2-small")
    assert [(s.name, [e.name for e in s.sources]) for s in sets] == [
        ("res-jb", ["0-res-jb", "1-res-jb", "6-res-jb", "10-res-jb"])]
