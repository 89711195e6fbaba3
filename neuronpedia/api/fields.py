"""Strict request fields for the public API, so that what the OpenAPI schema (drf-spectacular) promises and
what validation accepts are the same set (issue 15: schemathesis found integers accepted for strings,
`[true, ...]` accepted as a vector and blank strings the schema allowed refused).

DRF's fields coerce: a CharField takes 123 as "123", a FloatField takes true as 1.0 and "1.5" as 1.5, an
IntegerField takes "12", a BooleanField takes "yes" or 1. These take only the JSON type the schema names:

- `CharField`: a JSON string only. Lengths are checked on the string as sent (the schema's minLength /
  maxLength), before whitespace is trimmed. When whitespace is trimmed and blanks are not allowed, the
  schema carries `pattern: \\S` (some non-whitespace character; Python's `\\s` is exactly what
  `str.strip()` removes), which is DRF's blank rule.
- `RegexField`: a CharField whose pattern is tested on the string as sent (so " a" does not pass a
  `^[a-z]$` pattern by being trimmed first).
- `FloatField`: a JSON number (not a boolean, not a string), finite.
- `IntegerField`: a JSON integer (not a boolean, not a string; 3.0 is an integer in JSON Schema).
- `BooleanField`: true or false only.

Use them for request serializers; response serializers only serialize, and may keep DRF's fields."""

from __future__ import annotations

import math
import re
from typing import Any

from django.core import validators
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# "some character that str.strip() keeps", spelled out: JSON Schema patterns are ECMA regexes, whose `\S`
# differs from Python's (it counts U+001C..U+001F as text, which DRF strips; it strips U+FEFF, DRF keeps it)
NON_BLANK = r"[^\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
BLANK = "This field may not be blank."


class CharField(serializers.CharField):
    default_error_messages = {"invalid": "Not a valid string (send a JSON string)."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.trim_whitespace and not self.allow_blank and not self._has_pattern():
            # documents the blank rule in the schema (drf-spectacular turns it into `pattern`)
            self.validators.insert(0, validators.RegexValidator(NON_BLANK, message=BLANK))

    def _has_pattern(self) -> bool:
        return isinstance(self, RegexField)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if data is not serializers.empty and data is not None and not isinstance(data, str):
            self.fail("invalid")
        if isinstance(data, str) and not (data == "" and self.allow_blank):
            # lengths and patterns on the string as sent (what the schema describes), before trimming
            for validator in self.validators:
                if isinstance(validator, validators.MaxLengthValidator | validators.MinLengthValidator
                              | validators.RegexValidator):
                    try:
                        validator(data)
                    except validators.ValidationError as exc:
                        raise serializers.ValidationError(list(exc.messages)) from None
        return super().run_validation(data)

    def run_validators(self, value: Any) -> None:
        # the raw string passed the length and pattern checks above; the trimmed one may be shorter
        kept = [v for v in self.validators if not isinstance(
            v, validators.MaxLengthValidator | validators.MinLengthValidator | validators.RegexValidator)]
        saved, self.validators = self.validators, kept
        try:
            super().run_validators(value)
        finally:
            self.validators = saved


class RegexField(CharField):
    def __init__(self, regex: str | re.Pattern[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(validators.RegexValidator(regex, message=self.error_messages["invalid"]))

    default_error_messages = {"invalid": "This value does not match the required pattern."}


class FloatField(serializers.FloatField):
    default_error_messages = {"invalid": "A valid number is required (send a JSON number)."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, int) and abs(data) > 1e308:
            self.fail("invalid")
        value = float(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return super().to_internal_value(value)


class IntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "A valid integer is required (send a JSON integer)."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not (math.isfinite(data) and data.is_integer()):
            self.fail("invalid")
        return super().to_internal_value(int(data))


class BooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false (a JSON boolean)."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


# --- ids and feature indexes (every app's API) ----------------------------------------------------

MAX_INDEX = 2_147_483_647  # the index column is a 4-byte integer
DIGITS_RE = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "²" or "٣", which int() refuses


def parse_id(value: str, max_value: int = 2**63 - 1) -> int | None:
    """`value` as a database integer id, or None when it is not ASCII digits or does not fit."""
    if not DIGITS_RE.fullmatch(value) or len(value) > len(str(max_value)) or int(value) > max_value:
        return None
    return int(value)


def index_schema(max_value: int) -> dict[str, Any]:
    # the string form documents the digit strings that always fit (fewer digits than the maximum)
    return {"oneOf": [{"type": "integer", "minimum": 0, "maximum": max_value},
                      {"type": "string", "pattern": rf"^[0-9]{{1,{len(str(max_value)) - 1}}}$"}]}


@extend_schema_field(index_schema(MAX_INDEX))
class IndexField(serializers.Field):
    """A feature index as Neuronpedia clients send it: an integer or a string of digits."""

    default_error_messages = {"invalid": "must be a non-negative integer (or a short string of digits)",
                              "max_value": "must be at most {max_value}"}
    max_index = MAX_INDEX

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str):
            # exactly the schema's pattern (searched as JSON Schema does), so both accept the same strings
            if not re.search(rf"^[0-9]{{1,{len(str(self.max_index)) - 1}}}$", data):
                self.fail("invalid")
            data = int(data)
        if data < 0:
            self.fail("invalid")
        if data > self.max_index:
            self.fail("max_value", max_value=self.max_index)
        return data

    def to_representation(self, value: Any) -> str:
        return str(value)


@extend_schema_field({"oneOf": [{"type": "string", "minLength": 1, "maxLength": 64,
                                 "pattern": NON_BLANK},
                                {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}]})
class IdField(serializers.Field):
    """An object id (list, explanation) as a string or an integer; always a string internally."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, int | str) or not str(data).strip():
            raise serializers.ValidationError("must be an id (string or integer)")
        if len(str(data)) > 64:
            raise serializers.ValidationError("must be at most 64 characters")
        return str(data).strip()

    def to_representation(self, value: Any) -> str:
        return str(value)
