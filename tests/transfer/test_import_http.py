"""Import over HTTP: an S3-style listing (like the public bucket) and a plain index page, served locally."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import pytest

from neuronpedia.lib.jobs import JobStatus
from transfer import services as transfer_services
from transfer.importer.catalog import list_models, list_sets
from transfer.importer.storage import HttpStore
from transfer.importer.synthetic import SyntheticSpec, write_source
from transfer.tasks import import_source_task

SPEC = SyntheticSpec(num_features=8, acts_per_feature=2, context=6, batch_size=4)


class S3Handler(SimpleHTTPRequestHandler):
    """Files under `directory`, plus ListObjectsV2 (`?list-type=2&prefix=...&delimiter=/`) on `/`."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        query = parse_qs(urlsplit(self.path).query)
        if query.get("list-type") != ["2"]:
            return super().do_GET()
        prefix = query["prefix"][0]
        folder = Path(self.directory) / prefix
        dirs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        body = ('<?xml version="1.0" encoding="UTF-8"?>'
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Prefix>{escape(prefix)}</Prefix><IsTruncated>false</IsTruncated>"
                + "".join(f"<Contents><Key>{escape(prefix + p.name)}</Key><Size>{p.stat().st_size}</Size>"
                          "</Contents>" for p in files)
                + "".join(f"<CommonPrefixes><Prefix>{escape(prefix + p.name)}/</Prefix></CommonPrefixes>"
                          for p in dirs)
                + "</ListBucketResult>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None


def _serve(root: Path, handler: type[SimpleHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["s3", "index-page"])
def base_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    write_source(tmp_path / "v1", SPEC)
    handler = S3Handler if request.param == "s3" else SimpleHTTPRequestHandler
    if handler is SimpleHTTPRequestHandler:
        handler = type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    yield from _serve(tmp_path, handler)


@pytest.mark.django_db
def test_import_over_http_lists_and_loads_a_source(base_url: str) -> None:
    store = HttpStore(base_url)
    assert list_models(store) == ["gpt2-small"]
    assert [(s.name, [x.name for x in s.sources]) for s in list_sets(store, "gpt2-small")] == [
        ("res-jb", ["6-res-jb"])]
    job = transfer_services.start_import(model_id="gpt2-small", sources=["6-res-jb"], base=base_url)
    import_source_task(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert {k: v["imported"] for k, v in job.result["sources"]["6-res-jb"]["tables"].items()} == SPEC.counts


def test_an_unreachable_base_is_a_readable_error() -> None:
    from transfer.importer.errors import ImportSourceError

    with pytest.raises(ImportSourceError, match="cannot reach http://127.0.0.1:9/v1"):
        list_models(HttpStore("http://127.0.0.1:9/v1"))
