"""Where an export lives: a local folder or an HTTP(S) base URL (S3 listing, or a plain index page).

Files are streamed: a local file is read in chunks; a remote one is downloaded in chunks into a
temporary file on disk (so its sha256 is known before anything is written to the database).
"""

from __future__ import annotations

import hashlib
import html.parser
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import httpx

from transfer.importer.errors import ImportSourceError

CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(30.0, read=120.0)


@dataclass(frozen=True)
class RemoteFile:
    path: str         # relative to the base, '/'-separated
    size: int | None  # None when the listing does not say


class Store(Protocol):
    base: str

    def list_dirs(self, prefix: str) -> list[str]: ...
    def list_files(self, prefix: str) -> list[RemoteFile]: ...
    def exists(self, path: str) -> bool: ...
    def fetch(self, path: str) -> AbstractContextManager[BinaryIO]: ...


def sha256_of(handle: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    handle.seek(0)
    return digest.hexdigest(), size


class LocalStore:
    def __init__(self, base: str | Path) -> None:
        self.root = Path(base).expanduser()
        self.base = str(self.root)
        if not self.root.is_dir():
            raise ImportSourceError(f"export folder {self.root} does not exist")

    def list_dirs(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def list_files(self, prefix: str) -> list[RemoteFile]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return [RemoteFile(f"{prefix.strip('/')}/{p.name}".lstrip("/"), p.stat().st_size)
                for p in sorted(folder.iterdir()) if p.is_file()]

    def exists(self, path: str) -> bool:
        return (self.root / path).is_file()

    @contextmanager
    def fetch(self, path: str) -> Iterator[BinaryIO]:
        try:
            handle = (self.root / path).open("rb")
        except OSError as exc:
            raise ImportSourceError(f"cannot read {self.root / path}: {exc.strerror}") from None
        with handle:
            yield handle


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


class HttpStore:
    """`https://bucket.s3.amazonaws.com/v1`: listed with S3 ListObjectsV2 (delimiter '/'); a server that
    does not speak it (e.g. `python -m http.server` over an export folder) is listed from its index pages."""

    def __init__(self, base: str, client: httpx.Client | None = None) -> None:
        self.base = base.rstrip("/")
        parts = urlsplit(self.base)
        self.root = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
        self.prefix = parts.path.strip("/")
        self.client = client or httpx.Client(timeout=TIMEOUT, follow_redirects=True)

    def _key(self, path: str) -> str:
        return "/".join(p for p in (self.prefix, path.strip("/")) if p)

    def _get(self, url: str, **params: str) -> httpx.Response:
        try:
            response = self.client.get(url, params=params or None)
        except httpx.HTTPError as exc:
            raise ImportSourceError(f"cannot reach {self.base} (NP_IMPORT_BASE): {exc}") from None
        return response

    def _list(self, prefix: str) -> tuple[list[str], list[RemoteFile]]:
        key = self._key(prefix) + "/"
        dirs: list[str] = []
        files: list[RemoteFile] = []
        token = ""
        while True:
            params = {"list-type": "2", "prefix": key, "delimiter": "/"}
            if token:
                params["continuation-token"] = token
            response = self._get(self.root, **params)
            if b"ListBucketResult" not in response.content[:500]:
                return self._list_index_page(prefix)
            tree = ET.fromstring(response.content)  # noqa: S314 - trusted listing of the configured base
            namespace = tree.tag.split("}")[0] + "}" if tree.tag.startswith("{") else ""

            def find(element: ET.Element, name: str, ns: str = namespace) -> list[ET.Element]:
                return element.findall(f"{ns}{name}")

            for cp in find(tree, "CommonPrefixes"):
                dirs.append(cp[0].text.rstrip("/").rsplit("/", 1)[-1])
            for item in find(tree, "Contents"):
                fields = {child.tag.split("}")[-1]: child.text for child in item}
                rel = fields["Key"][len(self.prefix) + 1 if self.prefix else 0:]
                files.append(RemoteFile(rel, int(fields.get("Size") or 0)))
            truncated = [el.text for el in find(tree, "IsTruncated")]
            tokens = [el.text for el in find(tree, "NextContinuationToken")]
            if truncated != ["true"] or not tokens:
                return sorted(dirs), sorted(files, key=lambda f: f.path)
            token = tokens[0] or ""

    def _list_index_page(self, prefix: str) -> tuple[list[str], list[RemoteFile]]:
        url = f"{self.base}/{quote(prefix.strip('/'))}/" if prefix.strip("/") else f"{self.base}/"
        response = self._get(url)
        if response.status_code == 404:
            return [], []
        if response.status_code != 200:
            raise ImportSourceError(f"cannot list {url}: HTTP {response.status_code}")
        parser = _Links()
        parser.feed(response.text)
        dirs, files = [], []
        for href in parser.hrefs:
            if "?" in href or href.startswith(("/", "#", "..")) or "://" in href:
                continue
            name = href.rstrip("/")
            if href.endswith("/"):
                dirs.append(name)
            else:
                files.append(RemoteFile(f"{prefix.strip('/')}/{name}".lstrip("/"), None))
        return sorted(dirs), sorted(files, key=lambda f: f.path)

    def list_dirs(self, prefix: str) -> list[str]:
        return self._list(prefix)[0]

    def list_files(self, prefix: str) -> list[RemoteFile]:
        return self._list(prefix)[1]

    def url(self, path: str) -> str:
        return urljoin(self.base + "/", quote(path.strip("/")))

    def exists(self, path: str) -> bool:
        try:
            return self.client.head(self.url(path)).status_code == 200
        except httpx.HTTPError as exc:
            raise ImportSourceError(f"cannot reach {self.url(path)}: {exc}") from None

    @contextmanager
    def fetch(self, path: str) -> Iterator[BinaryIO]:
        url = self.url(path)
        with tempfile.TemporaryFile(prefix="np-import-") as spool:
            try:
                with self.client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise ImportSourceError(f"cannot download {url}: HTTP {response.status_code}")
                    for chunk in response.iter_bytes(CHUNK):
                        spool.write(chunk)
            except httpx.HTTPError as exc:
                raise ImportSourceError(f"cannot download {url}: {exc}") from None
            spool.seek(0)
            yield spool  # type: ignore[misc]


def open_store(base: str) -> LocalStore | HttpStore:
    if base.startswith(("http://", "https://")):
        return HttpStore(base)
    return LocalStore(base)
