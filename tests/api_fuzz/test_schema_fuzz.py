"""Issues 8 and 15: a property-based fuzz run of the whole public API schema (schemathesis) against a live
server with seeded data and a real tiny inference worker: no 5xx, every status code documented, every
response matching its schema, and the schema and validation agreeing both ways: a request the schema
forbids is refused (negative_data_rejection), and a request it allows is not refused by a field's own rules
(a positive case answered 400 fails unless the message is one of BUSINESS_RULES below: refusals that depend
on the stored data or on two fields together, which a JSON schema cannot express). Seeded and derandomized
(conftest.SEED), so a CI failure reproduces."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest
import schemathesis

from tests.api_fuzz.conftest import Stats

schema = schemathesis.pytest.from_fixture("api_schema")

# What a schema-valid request may still be refused for (400), with why a schema cannot say it.
BUSINESS_RULES = [
    # two fields together
    r"tokens \(\d+\) and values \(\d+\) differ in length",
    r"This field is required \(or give `layer`\)",  # `source` or its older name `layer`
    r"^feature: This field is required\.$",  # `feature` or its older name `neuron`
    r"must not contain '--' or '\.\.'",  # model ids: no doubled separators
    r"this name is reserved or contains '--'",
    r"sortByTokenIndexes \[[^\]]*\] outside 0\.\.\d+",  # token positions of the given `text`
    # the stored data
    r"has no live inference", r"must be between 0 and \d+ for ", r"Model not found", r"not found",
    r"already exists", r"has no source set", r"Scoring needs both activating and non-activating examples",
    r"dimension", r"invalid graph JSON",
    # a documented capability this server does not offer
    r"assistant-axis readouts are not supported",
]
BUSINESS = re.compile("|".join(BUSINESS_RULES))


def _refused_positive(case: Any, response: Any) -> str | None:
    """The message of a schema-valid request refused by field validation, or None."""
    if case.meta is None or case.meta.generation.mode.value != "positive" or response.status_code != 400:
        return None
    try:
        message = str(response.json().get("message", ""))
    except ValueError:
        return "400 without a JSON body"
    return None if BUSINESS.search(message) else message


@schema.parametrize()
def test_api_schema_fuzz(case: Any, fuzz_stats: Stats) -> None:
    started = time.monotonic()
    response = case.call()
    fuzz_stats.add(case.operation.label, response.status_code, time.monotonic() - started)
    refused = _refused_positive(case, response)
    if os.environ.get("NP_FUZZ_DEBUG") and refused:
        print("POSITIVE-400", case.operation.label, repr(case.body)[:300], response.text[:300])
    case.validate_response(response)
    assert refused is None, (f"schema-valid request refused: {case.operation.label} -> {refused}; "
                             f"body {repr(case.body)[:500]}")


# --- the strict fields themselves (neuronpedia/api/fields.py), without a server ----------------------

@pytest.mark.parametrize(("field", "value"), [
    ("char", 123), ("char", 1.5), ("char", True), ("char", ["a"]), ("char", {"a": 1}),
    ("char", "\u001e \t"), ("char", "x" * 11),
    ("float", True), ("float", "1.5"), ("float", None), ("float", [1.0]), ("float", 10**400),
    ("int", True), ("int", "12"), ("int", 1.5), ("int", float("nan")),
    ("bool", 1), ("bool", "true"), ("bool", "yes"),
    ("regex", " ab"), ("regex", 12), ("regex", "ab "), ("url", "javascript:alert(1)"), ("url", "  "),
    ("url", "https://a b"),
])
def test_strict_fields_refuse_what_the_schema_forbids(field: str, value: Any) -> None:
    from rest_framework import serializers

    from features.api.serializers import _web_url
    from neuronpedia.api import fields

    class Body(serializers.Serializer):
        char = fields.CharField(max_length=10, required=False)
        float = fields.FloatField(required=False)
        int = fields.IntegerField(required=False)
        bool = fields.BooleanField(required=False)
        regex = fields.RegexField(r"^[a-z]+$", max_length=10, required=False)
        url = _web_url(max_length=50)

    body = Body(data={field: value})
    assert not body.is_valid(), (field, value, body.validated_data)
    assert field in body.errors


@pytest.mark.parametrize(("field", "value", "stored"), [
    ("char", " a\u001e", "a"), ("char", "\ufeff", "\ufeff"), ("char", "x" * 10, "x" * 10),
    ("float", 3, 3.0), ("float", -1e-3, -1e-3), ("int", 3.0, 3), ("int", -7, -7),
    ("bool", False, False), ("regex", "ab\n", "ab"), ("url", "", ""), ("url", "https://a.b/c?d=1", "https://a.b/c?d=1"),
])
def test_strict_fields_accept_what_the_schema_allows(field: str, value: Any, stored: Any) -> None:
    from rest_framework import serializers

    from features.api.serializers import _web_url
    from neuronpedia.api import fields

    class Body(serializers.Serializer):
        char = fields.CharField(max_length=10, required=False)
        float = fields.FloatField(required=False)
        int = fields.IntegerField(required=False)
        bool = fields.BooleanField(required=False)
        regex = fields.RegexField(r"^[a-z]+$", max_length=10, required=False)
        url = _web_url(max_length=50)

    body = Body(data={field: value})
    assert body.is_valid(), body.errors
    assert body.validated_data[field] == stored


def test_the_schema_documents_the_blank_rule_and_the_pattern_matches_it() -> None:
    import json

    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    spec = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
    name = spec["components"]["schemas"]["ListNewInRequest"]["properties"]["name"]
    assert (name["type"], name["minLength"]) == ("string", 1)
    assert "pattern" in name
    for text in ["a", " a ", "\ufeff", "é"]:
        jsonschema.validate(text, name)
    for text in ["", " ", "\u001e", "\u3000\t", "\u2028"]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(text, name)
    vector = spec["components"]["schemas"]["VectorNewInRequest"]["properties"]["vector"]
    assert vector["items"]["type"] == "number"
