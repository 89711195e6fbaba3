"""docker-compose.yml, bin/np and .env.example describe the same product."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from neuronpedia.queues import Queue

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
BIN_NP = (ROOT / "bin" / "np").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()


def test_cpu_worker_consumes_the_same_queues_in_compose_and_bin_np() -> None:
    queues = f"{Queue.DEFAULT},{Queue.IMPORTS}"
    assert queues in COMPOSE["services"]["worker"]["command"]
    assert f"-Q {queues}" in BIN_NP


def test_inference_worker_config_in_compose_exists_and_matches_bin_np() -> None:
    command = COMPOSE["services"]["inference-smollm2"]["command"]
    config = command[command.index("--config") + 1]
    assert (ROOT / config).is_file()
    assert config in BIN_NP


def test_every_variable_set_in_compose_is_documented() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", ENV_EXAMPLE, flags=re.M))
    used: set[str] = set()
    for service in COMPOSE["services"].values():
        used |= set((service.get("environment") or {}).keys())
    # images' own variables (POSTGRES_*) and cache locations are not product settings
    product = {v for v in used if not v.startswith("POSTGRES_") and v not in {"HF_HOME", "NP_MODEL_CACHE"}}
    assert product <= documented, product - documented


def test_gpu_reservation_for_the_inference_worker() -> None:
    devices = COMPOSE["services"]["inference-smollm2"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
