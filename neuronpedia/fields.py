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
