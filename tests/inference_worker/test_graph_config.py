"""TRANSCODER_SETS in the worker config, and the worker's lazy loading of a set: absent -> not ready (the
worker runs anyway), present -> served as `{L}-NAME` sources and as a replacement model, a new version
behind `current` -> reloaded; SAE-Lens folders and circuit-tracer configs both load."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from inference_worker.config import TranscoderSetConfig, WorkerConfig, load_config
from inference_worker.runtime import clear_caches, get_worker
from inference_worker.saes import UnknownSourceError
from inference_worker.transcoders import TranscodersNotReady
from tests.inference_worker.graph_sets import write_set

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _fresh_caches() -> Any:
    clear_caches()
    yield
    clear_caches()


def _config(path: Path | str, name: str = "plt-demo", **extra: Any) -> WorkerConfig:
    return WorkerConfig.from_dict({"model_id": "tiny", "model_source": "tiny", "device": "cpu",
                                   "transcoder_sets": [{"name": name, "path": str(path)}], **extra})


def test_env_file_parses_transcoder_sets_and_resolves_paths(tmp_path: Path) -> None:
    env = tmp_path / "w.env"
    env.write_text('MODEL_ID=m\nMODEL_SOURCE=tiny\nGRAPH_TOKEN_LIMIT=32\n'
                   'TRANSCODER_SETS=[{"name": "plt-demo", "path": "sets/plt/current"},'
                   ' {"name": "clt", "path": "~/x/config.yaml"}]\n')
    cfg = load_config(env)
    assert cfg.graph_token_limit == 32
    assert cfg.transcoder_sets == (
        TranscoderSetConfig("plt-demo", str(tmp_path / "sets" / "plt" / "current")),
        TranscoderSetConfig("clt", str(Path("~/x/config.yaml").expanduser())))


def test_demo_env_names_the_trainers_current_link() -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "inference_worker" / "configs"
                      / "smollm2-135m-instruct.demo.env")
    (tset,) = cfg.transcoder_sets
    assert tset.name == "plt-demo"
    expected = Path.home() / ".cache/neuronpedia/transcoders/smollm2-135m-instruct/plt-demo/current"
    assert tset.path == str(expected)


@pytest.mark.parametrize(("data", "message"), [
    ({"transcoder_sets": [{"name": "", "path": "/x"}]}, "bad transcoder set name"),
    ({"transcoder_sets": [{"name": "a b", "path": "/x"}]}, "bad transcoder set name"),
    ({"transcoder_sets": [{"name": "t", "path": ""}]}, "path"),
    ({"transcoder_sets": [{"name": "t", "path": "/x"}, {"name": "t", "path": "/y"}]}, "duplicate"),
    ({"transcoder_sets": "plt-demo"}, "list"),
    ({"transcoder_sets": [{"name": "res", "path": "/x"}],
      "source_sets": [{"name": "res", "sources": []}]}, "both"),
])
def test_bad_transcoder_sets_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkerConfig.from_dict({"model_id": "m", **data})


def test_bad_json_in_env_is_a_value_error(tmp_path: Path) -> None:
    env = tmp_path / "w.env"
    env.write_text("MODEL_ID=m\nTRANSCODER_SETS=[{name: 1}]\n")
    with pytest.raises(ValueError, match="TRANSCODER_SETS is not valid JSON"):
        load_config(env)


def test_missing_set_is_not_ready_then_served_once_trained(tmp_path: Path) -> None:
    root = tmp_path / "plt-demo"
    worker = get_worker(_config(root / "current"))  # starts without the set
    assert worker.registry.ids == []
    with pytest.raises(TranscodersNotReady, match="transcoders plt-demo are not trained yet"):
        worker.transcoder_set("plt-demo")
    with pytest.raises(UnknownSourceError, match="no transcoder set 'other'"):
        worker.transcoder_set("other")
    (root / "versions" / "v0").mkdir(parents=True)  # training under way: only a checkpoint
    (root / "versions" / "v0" / "checkpoint.pt").write_bytes(b"x")
    os.symlink("versions/v0", root / "current")
    with pytest.raises(TranscodersNotReady, match="not trained yet"):
        worker.transcoder_set("plt-demo")
    assert worker.refresh_transcoders() == []
    os.remove(root / "current")

    write_set(root, worker.model)  # training finished: no restart needed
    assert worker.refresh_transcoders() == ["plt-demo"]
    assert worker.registry.ids == ["0-plt-demo", "1-plt-demo"]
    src = worker.registry.get("1-plt-demo")
    assert (src.kind, src.hook_name, src.hook_name_out, src.d_sae) == (
        "transcoder", "blocks.1.ln2.hook_normalized", "blocks.1.hook_mlp_out", 64)
    # encode = the transcoder's encoder on its input hook: a few features active per token
    _, cache = worker.model.run_with_cache("hello world")
    acts = src.encode_hook_acts(cache["blocks.1.ln2.hook_normalized"])
    assert acts.shape[-1] == 64
    assert 0 < (acts > 0).float().sum(-1).mean() < 32
    tset = worker.transcoder_set("plt-demo")
    assert worker.transcoder_set("plt-demo") is tset  # cached while the link does not move
    rm = worker.replacement_model("plt-demo")
    assert worker.replacement_model("plt-demo") is rm
    assert rm.cfg.n_layers == 2


def test_new_version_behind_current_is_reloaded(tmp_path: Path) -> None:
    root = tmp_path / "plt-demo"
    worker = get_worker(_config(root / "current"))
    write_set(root, worker.model, seed=0)
    first = worker.transcoder_set("plt-demo")
    rm1 = worker.replacement_model("plt-demo")
    write_set(root, worker.model, seed=1)  # a retrained set: `current` now points elsewhere
    second = worker.transcoder_set("plt-demo")
    assert second is not first
    assert second.path != first.path
    assert worker.registry.get("0-plt-demo") is second.sources[0]
    assert len(worker.registry) == 2
    assert worker.replacement_model("plt-demo") is not rm1
    assert not torch.equal(first.sources[0].W_dec, second.sources[0].W_dec)


def test_set_present_at_start_is_served_from_the_start(tmp_path: Path) -> None:
    from inference_worker.models import build_tiny_model

    link = write_set(tmp_path / "s", build_tiny_model(seed=0))
    worker = get_worker(_config(link))
    assert worker.registry.ids == ["0-plt-demo", "1-plt-demo"]


def test_saelens_folders_and_circuit_tracer_config_load_alike(tmp_path: Path) -> None:
    from inference_worker.models import build_tiny_model

    model = build_tiny_model(seed=0)
    current = write_set(tmp_path / "s", model)
    version = current.resolve()
    loaded = {}
    for kind, path in (("saelens", version / "saelens"), ("ct", version / "circuit_tracer" / "config.yaml")):
        clear_caches()
        worker = get_worker(_config(path))
        tset = worker.transcoder_set("plt-demo")
        loaded[kind] = tset
        assert tset.input_hook == "ln2.hook_normalized"
        assert [s.id for s in tset.sources] == ["0-plt-demo", "1-plt-demo"]
    x = torch.randn(3, model.cfg.d_model) * 2
    for a, b in zip(loaded["saelens"].sources, loaded["ct"].sources, strict=True):
        torch.testing.assert_close(a.encode(x), b.encode(x))


def test_broken_set_is_logged_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "broken" / "0-plt-demo"
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps({"architecture": "standard"}))
    worker = get_worker(_config(tmp_path / "broken"))
    assert worker.registry.ids == []
    assert "plt-demo could not be loaded" in caplog.text
