from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference_worker.config import (
    SourceConfig,
    WorkerConfig,
    load_config,
    parse_env_text,
)
from inference_worker.source_ids import SourceId, is_valid_source_id, parse_source_id

SETS = [{"name": "res-demo", "sources": [{"id": "15-res-demo", "path": "/tmp/sae", "x": 1}]}]


def test_from_dict_ignores_unknown_keys() -> None:
    cfg = WorkerConfig.from_dict({"model_id": "m", "token_limit": "64", "future_key": 1,
                                  "source_sets": SETS})
    assert cfg.token_limit == 64
    assert cfg.source_ids == ("15-res-demo",)


@pytest.mark.parametrize("bad", [
    {"model_id": ""},
    {"model_id": "m", "dtype": "float64"},
    {"model_id": "m", "device": "tpu"},
    {"model_id": "m", "model_source": "hf_local"},
    {"model_id": "m", "token_limit": 0},
    {"model_id": "m", "strength_min": 5, "strength_max": -5},
    {"model_id": "m", "source_sets": [{"name": "res-demo", "sources": [{"id": "3-other",
                                                                         "path": "/x"}]}]},
])
def test_invalid_config_raises_value_error(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        WorkerConfig.from_dict(bad)


def test_source_needs_exactly_one_location() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SourceConfig(id="1-res", path="/a", release="r")
    with pytest.raises(ValueError, match="sae_id"):
        SourceConfig(id="1-res", release="r")


def test_env_file_loader(tmp_path: Path) -> None:
    env = tmp_path / ".env.inference.smollm2.res-demo"
    env.write_text("# demo\nMODEL_ID=smollm2-135m-instruct\nMODEL_SOURCE=smollm2\n"
                   f"export TOKEN_LIMIT='128'\nSOURCE_SETS={json.dumps(SETS)}\nUNRELATED=1\n")
    cfg = load_config(env)
    assert (cfg.model_id, cfg.model_source, cfg.token_limit) == ("smollm2-135m-instruct",
                                                                 "smollm2", 128)
    assert cfg.source_sets[0].sources[0].path == "/tmp/sae"


def test_json_loader(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"model_id": "tiny", "model_source": "tiny", "source_sets": SETS}))
    assert load_config(path).source_sets[0].name == "res-demo"


def test_env_text_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_env_text("not a pair")


def test_parse_source_id() -> None:
    assert parse_source_id("6-res-jb") == SourceId(6, "res-jb")
    assert parse_source_id("20-gemmascope-res-16k__l0-71") == SourceId(20, "gemmascope-res-16k",
                                                                       "l0-71")
    assert str(parse_source_id("6-res-jb__v2")) == "6-res-jb__v2"
    assert not is_valid_source_id("res-jb")
