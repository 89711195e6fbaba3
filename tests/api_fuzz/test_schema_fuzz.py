"""Issue 8: a property-based fuzz run of the whole public API schema (schemathesis) against a live server
with seeded data and a real tiny inference worker: no 5xx, every status code documented and every
response matching its schema. Seeded and derandomized (conftest.SEED), so a CI failure reproduces."""

from __future__ import annotations

import os
import time
from typing import Any

import schemathesis

from tests.api_fuzz.conftest import Stats

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api_schema_fuzz(case: Any, fuzz_stats: Stats) -> None:
    started = time.monotonic()
    response = case.call()
    fuzz_stats.add(case.operation.label, response.status_code, time.monotonic() - started)
    if os.environ.get("NP_FUZZ_DEBUG") and response.status_code == 400 and case.meta is not None \
            and case.meta.generation.mode.value == "positive":
        print("POSITIVE-400", case.operation.label, repr(case.body)[:300], response.text[:300])
    case.validate_response(response)
