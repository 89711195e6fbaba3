"""Worker configuration: one model plus the source sets it serves.

Mirrors Neuronpedia's ``.env.inference.<model>.<set>`` files (``MODEL_ID``, ``SAE_SETS``,
``MODEL_DTYPE``, ``TOKEN_LIMIT`` ...). Pure Python: importable without torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

ModelSource = Literal["transformerlens", "hf_local", "smollm2", "tiny"]  # tiny: tests/benchmarks
DTypeName = Literal["float32", "bfloat16", "float16"]
DeviceName = Literal["auto", "cpu", "cuda", "mps"]


def _from_known_keys(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class SourceConfig:
    """One source: an SAE-Lens SAE on disk (``path``) or on the hub (``release`` + ``sae_id``)."""

    id: str  # Neuronpedia source id, e.g. "15-res-demo"
    path: str | None = None
    release: str | None = None
    sae_id: str | None = None

    def __post_init__(self) -> None:
        from inference_worker.source_ids import parse_source_id

        parse_source_id(self.id)  # raises ValueError on malformed ids
        if (self.path is None) == (self.release is None):
            raise ValueError(f"source {self.id}: give exactly one of path or release")
        if self.release is not None and not self.sae_id:
            raise ValueError(f"source {self.id}: release needs sae_id")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceConfig:
        return cls(**_from_known_keys(cls, data))


@dataclass(frozen=True)
class SourceSetConfig:
    name: str  # e.g. "res-demo"; source ids are "{layer}-{name}"
    sources: tuple[SourceConfig, ...] = ()

    def __post_init__(self) -> None:
        from inference_worker.source_ids import parse_source_id

        if not self.name or self.name[0] == "-":
            raise ValueError(f"bad source set name {self.name!r}")
        for s in self.sources:
            if parse_source_id(s.id).set_name != self.name:
                raise ValueError(f"source {s.id} does not belong to set {self.name}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceSetConfig:
        kwargs = _from_known_keys(cls, data)
        kwargs["sources"] = tuple(SourceConfig.from_dict(s) for s in data.get("sources", ()))
        return cls(**kwargs)


@dataclass(frozen=True)
class TranscoderSetConfig:
    """A transcoder set for attribution graphs, e.g. ``{"name": "plt-demo", "path": "~/.cache/..."}``.

    ``path``: a trainer output folder (or its ``current`` link), a folder of SAE-Lens transcoder folders
    ``{L}-NAME/``, or a circuit-tracer ``config.yaml`` (see ``inference_worker.transcoders``). It may not
    exist yet (training still running): the worker starts anyway and loads the set on first use."""

    name: str
    path: str

    def __post_init__(self) -> None:
        from inference_worker.source_ids import is_valid_source_id

        if not self.name or not is_valid_source_id(f"0-{self.name}"):
            raise ValueError(f"bad transcoder set name {self.name!r}")
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"transcoder set {self.name}: path must be a non-empty string")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscoderSetConfig:
        if not isinstance(data, dict):
            raise ValueError("each transcoder set is an object {name, path}")
        return cls(**_from_known_keys(cls, data))


@dataclass(frozen=True)
class WorkerConfig:
    """Everything one inference worker process needs to know."""

    model_id: str
    model_source: ModelSource = "transformerlens"
    model_path: str | None = None  # local HF folder for "hf_local"
    tl_model_name: str | None = None  # TransformerLens name when it differs from model_id
    source_sets: tuple[SourceSetConfig, ...] = ()
    transcoder_sets: tuple[TranscoderSetConfig, ...] = ()
    device: DeviceName = "auto"
    dtype: DTypeName = "float32"
    sae_dtype: DTypeName = "float32"
    token_limit: int = 200
    max_new_tokens: int = 256
    strength_min: float = -500.0
    strength_max: float = 500.0
    strength_multiplier_max: float = 10.0
    num_results_max: int = 1000
    cossim_results_max: int = 128
    max_logprobs: int = 20
    graph_token_limit: int = 64  # longest prompt (in tokens, incl. BOS) for graphs and interventions
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.model_id:
            raise ValueError("model_id must not be empty")
        _check_choice("model_source", self.model_source, ModelSource)
        _check_choice("device", self.device, DeviceName)
        _check_choice("dtype", self.dtype, DTypeName)
        _check_choice("sae_dtype", self.sae_dtype, DTypeName)
        if self.model_source == "hf_local" and not self.model_path:
            raise ValueError("model_source 'hf_local' needs model_path")
        for name in ("token_limit", "max_new_tokens", "num_results_max", "cossim_results_max",
                     "graph_token_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.strength_min > self.strength_max:
            raise ValueError("strength_min must be <= strength_max")
        names = [s.name for s in self.source_sets]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate source set names in {names}")
        ids = [src.id for s in self.source_sets for src in s.sources]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate source ids")
        tnames = [t.name for t in self.transcoder_sets]
        if len(tnames) != len(set(tnames)):
            raise ValueError(f"duplicate transcoder set names in {tnames}")
        clash = set(tnames) & set(names)
        if clash:
            raise ValueError(f"{sorted(clash)} named both a source set and a transcoder set")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerConfig:
        """Build from a dict, ignoring unknown keys (forward compatible)."""
        kwargs = _from_known_keys(cls, data)
        kwargs.pop("source_sets", None)
        kwargs.pop("transcoder_sets", None)
        for key in ("token_limit", "max_new_tokens", "num_results_max", "cossim_results_max",
                    "max_logprobs", "graph_token_limit"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        for key in ("strength_min", "strength_max", "strength_multiplier_max"):
            if key in kwargs:
                kwargs[key] = float(kwargs[key])
        sets = tuple(SourceSetConfig.from_dict(s) for s in data.get("source_sets", ()))
        tsets = data.get("transcoder_sets") or ()
        if not isinstance(tsets, (list, tuple)):
            raise ValueError("transcoder_sets must be a list of {name, path}")
        return cls(source_sets=sets, transcoder_sets=tuple(TranscoderSetConfig.from_dict(t) for t in tsets),
                   **kwargs)

    @property
    def source_ids(self) -> tuple[str, ...]:
        return tuple(src.id for s in self.source_sets for src in s.sources)


def _check_choice(name: str, value: str, choices: Any) -> None:
    allowed = get_args(choices)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


# Neuronpedia-style env keys → WorkerConfig fields.
ENV_KEYS: dict[str, str] = {
    "MODEL_ID": "model_id",
    "MODEL_SOURCE": "model_source",
    "MODEL_PATH": "model_path",
    "TL_MODEL_NAME": "tl_model_name",
    "DEVICE": "device",
    "MODEL_DTYPE": "dtype",
    "SAE_DTYPE": "sae_dtype",
    "TOKEN_LIMIT": "token_limit",
    "MAX_NEW_TOKENS": "max_new_tokens",
    "STRENGTH_MIN": "strength_min",
    "STRENGTH_MAX": "strength_max",
    "STRENGTH_MULTIPLIER_MAX": "strength_multiplier_max",
    "NUM_RESULTS_MAX": "num_results_max",
    "COSSIM_RESULTS_MAX": "cossim_results_max",
    "MAX_LOGPROBS": "max_logprobs",
    "SOURCE_SETS": "source_sets",  # JSON list of {name, sources: [{id, path|release+sae_id}]}
    "TRANSCODER_SETS": "transcoder_sets",  # JSON list of {name, path} (attribution graphs)
    "GRAPH_TOKEN_LIMIT": "graph_token_limit",
}

_JSON_KEYS = ("source_sets", "transcoder_sets")


def parse_env_text(text: str) -> dict[str, str]:
    """Parse KEY=VALUE lines; '#' comments, blank lines and optional quotes allowed."""
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"line {lineno}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def config_from_env_mapping(env: dict[str, str]) -> WorkerConfig:
    data: dict[str, Any] = {}
    for key, name in ENV_KEYS.items():
        if key in env and env[key] != "":
            if name in _JSON_KEYS:
                try:
                    data[name] = json.loads(env[key])
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{key} is not valid JSON: {exc}") from exc
            else:
                data[name] = env[key]
    return WorkerConfig.from_dict(data)


def load_config(path: str | os.PathLike[str]) -> WorkerConfig:
    """Load a worker config from a ``.json`` file or a KEY=VALUE env file. Relative source and
    model paths are resolved against the folder of the config file (``~`` is expanded)."""
    p = Path(path)
    text = p.read_text()
    if p.suffix == ".json":
        config = WorkerConfig.from_dict(json.loads(text))
    else:
        config = config_from_env_mapping(parse_env_text(text))
    return _resolve_paths(config, p.resolve().parent)


def _resolve(path: str | None, base: Path) -> str | None:
    if path is None:
        return None
    expanded = Path(path).expanduser()
    return str(expanded if expanded.is_absolute() else (base / expanded).resolve())


def _resolve_paths(config: WorkerConfig, base: Path) -> WorkerConfig:
    from dataclasses import replace  # noqa: PLC0415

    sets = tuple(
        replace(s, sources=tuple(replace(src, path=_resolve(src.path, base)) for src in s.sources))
        for s in config.source_sets)
    # absolute but symlinks kept: a `current` link is followed on every use (a new version is picked up)
    tsets = tuple(replace(t, path=os.path.normpath(base / Path(t.path).expanduser()))
                  for t in config.transcoder_sets)
    return replace(config, source_sets=sets, transcoder_sets=tsets,
                   model_path=_resolve(config.model_path, base))
