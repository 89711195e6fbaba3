"""A live server (pytest-django `live_server`, transactional database) with seeded data and a REAL tiny
inference worker (the fixtures of tests/api_inference), for the schemathesis fuzz run of the whole
public API schema (tests/api_fuzz/test_schema_fuzz.py).

Seeded: alice and her API key (sent as `x-api-key` on every request, so authenticated endpoints are
exercised past the 401), the worker's model `tiny-api` / source `0-res-id` with features that have
activations and (embedded) explanations, a list of alice's, a vector of alice's, a shared steering result,
and the `gpt2-small` catalog of tests/factories (no worker). The generated ids, sources and indexes are
drawn from these (a schemathesis dictionary, with a probability) so most requests reach the code behind
the 404s; the rest stays random."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_inference import conftest as inference
from tests.api_inference.conftest import (  # noqa: F401  (fixtures used here)
    MODEL_ID,
    SOURCE,
    SOURCE_SET,
    fake_llm,
    live,
    worker_config,
)

SEED = 20240608
MAX_EXAMPLES = 12  # per operation, fuzzing phase; the coverage and examples phases add their own


@pytest.fixture(scope="package")
def worker(django_db_setup: None, django_db_blocker: Any, worker_config: Any) -> Iterator[Any]:  # noqa: F811
    """tests/api_inference's worker process, but stopped when this package is done rather than at the end
    of the session, so that it never runs beside the one that package starts (two workers upserting the
    same host row deadlocked with the transactional tests' flush)."""
    yield from inference.worker.__wrapped__(django_db_setup, django_db_blocker, worker_config)


@pytest.fixture
def fuzz_data(live: None, alice: Any, fake_llm: Any) -> dict[str, Any]:  # noqa: F811
    """The rows the fuzzer's dictionaries point at, in this test's clean database."""
    from autointerp import services as autointerp_services
    from features import services
    from features.models import Explanation, Model, Source, SourceSet
    from neuronpedia.accounts.services import create_api_key
    from tests import factories

    catalog = factories.make_catalog()
    source = Source.objects.get(model_id=MODEL_ID, name=SOURCE)
    features = []
    for index in range(4):
        feature = factories.make_feature(source, index, max_act_approx=2.0 + index, frac_nonzero=0.01 * index)
        factories.make_activation(feature, ["The", f" cat {index}", " sat"], [0.0, 1.5 + index, 0.5])
        factories.make_activation(feature, ["A", f" dog {index}"], [0.0, 0.0])  # a non-activating example
        Explanation.objects.create(feature=feature, description=f"cats and kittens {index}")
        features.append(feature)
    Explanation.objects.create(feature=catalog["feature"], description="the capital of France")
    autointerp_services.embed_explanations(explanations=Explanation.objects.all())

    own_model = services.create_model(user=alice, model_id="alice-model", layers=2, dimension=4)
    own_set = services.create_source_set(user=alice, model=own_model, name="alice-sae")
    feature_list = services.create_list(user=alice, name="fuzz list", items=[(f, "note") for f in features])
    vector = services.create_vector(user=alice, model=Model.objects.get(pk=MODEL_ID), layer=0,
                                    hook_type="hook_resid_pre", values=[0.1] * 64, label="fuzz vector",
                                    default_steer_strength=4.0)
    assert SourceSet.objects.filter(pk=own_set.pk).exists()
    key = create_api_key(user=alice)[1]
    return {"key": key, "list": feature_list, "vector": vector, "features": features,
            "explanations": list(Explanation.objects.values_list("pk", flat=True))}


@pytest.fixture
def api_schema(live_server: Any, fuzz_data: dict[str, Any]) -> Any:
    import schemathesis
    from schemathesis.config import SchemathesisConfig

    from features.models import Explanation

    models = [MODEL_ID, "gpt2-small", "alice-model"]
    sources = [SOURCE, "6-res-jb", "0-alice-sae", fuzz_data["vector"].source.name]
    indexes = [0, 1, 3, 200, fuzz_data["vector"].index]
    ids = [str(pk) for pk in Explanation.objects.values_list("pk", flat=True)]

    def bind(name: str, probability: float = 0.8) -> dict[str, Any]:
        return {"dictionary": name, "probability": probability}

    parameters: dict[str, Any] = {
        "path.model_id": bind("models"), "path.source_name": bind("sources"), "path.index": bind("indexes"),
        "path.name": bind("sets"), "path.explanation_id": bind("explanations"),
    }
    for prefix in ("body.", "body.feature.", "body.neuron.", "body.features[*].", "body.featuresToAdd[*]."):
        parameters.update({prefix + "modelId": bind("models"), prefix + "source": bind("sources"),
                           prefix + "layer": bind("sources"), prefix + "index": bind("indexes")})
    parameters.update({
        "body.listId": bind("lists"), "body.explanationId": bind("explanations"),
        "body.sourceSet": bind("sets"), "body.layers[*]": bind("sources"),
        "body.selectedLayers[*]": bind("sources", 0.5), "body.releaseName": bind("releases"),
        "body.steerOutputId": bind("steers", 0.5),
    })
    config = SchemathesisConfig.from_dict({
        "seed": SEED,
        "suppress-health-check": ["all"],
        "headers": {"x-api-key": fuzz_data["key"]},
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True,
                       "database": "none", "allow-x00": False},
        "checks": {"enabled": False, "not_a_server_error": {"enabled": True},
                   "status_code_conformance": {"enabled": True},
                   "content_type_conformance": {"enabled": True},
                   "response_schema_conformance": {"enabled": True},
                   # a request the schema forbids (a number for a string, a boolean for a number, a blank
                   # name, an unknown enum value...) must be refused: strict fields, neuronpedia/api/fields.py
                   "negative_data_rejection": {"enabled": True}},
        # and a request it allows must not be refused by a field's own rules: test_schema_fuzz.py checks
        # that (schemathesis' positive_data_acceptance, less the documented business rules)
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": 60,
        "dictionaries": {
            "models": {"values": models}, "live-models": {"values": [MODEL_ID]},
            "sources": {"values": sources}, "indexes": {"values": indexes},
            "sets": {"values": [SOURCE_SET, "res-jb", "alice-sae"]},
            "explanations": {"values": ids or ["1"]}, "lists": {"values": [str(fuzz_data["list"].pk)]},
            "releases": {"values": ["res-jb-release"]}, "steers": {"values": ["nope"]},
        },
        "parameters": parameters,
        # only tiny-api has a worker: other models would answer the documented 503 (no inference worker)
        "operations": [{"include-tag": ["activations", "search via inference", "steering"],
                        "parameters": {key: bind("live-models") for key in parameters
                                       if key.endswith("modelId")}}],
    })
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", config=config)


class Stats:
    """Requests, status codes and seconds per operation, printed at the end (`pytest -s`)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {}
        self.statuses: dict[str, dict[int, int]] = {}

    def add(self, label: str, status: int, seconds: float) -> None:
        self.calls.setdefault(label, []).append(seconds)
        counts = self.statuses.setdefault(label, {})
        counts[status] = counts.get(status, 0) + 1

    def report(self) -> str:
        lines = [f"{len(self.calls)} operations, {sum(map(len, self.calls.values()))} requests, "
                 f"{sum(map(sum, self.calls.values())):.1f} s in requests"]
        for label, times in sorted(self.calls.items(), key=lambda item: -sum(item[1])):
            codes = " ".join(f"{code}x{n}" for code, n in sorted(self.statuses[label].items()))
            lines.append(f"  {label:55} {len(times):4} requests {sum(times):6.1f} s  {codes}")
        return "\n".join(lines)


@pytest.fixture
def fuzz_stats() -> Iterator[Stats]:
    stats = Stats()
    quiet = logging.getLogger("django.request")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # thousands of expected 400/404 warnings otherwise
    yield stats
    quiet.setLevel(level)
    print("\n" + stats.report())


@pytest.fixture(autouse=True)
def _schemathesis_nodeid_shim(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 (pytest.from_fixture) reads `node._nodeid`, which pytest 9 no longer has; it
    only uses it to name the per-operation subtests."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
