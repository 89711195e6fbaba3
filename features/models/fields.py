from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models


class RealField(models.FloatField):
    """4-byte float: activation values and histograms need no double precision and halve storage."""

    description = "Single-precision floating point number"

    def db_type(self, connection: Any) -> str:
        return "real"


def real_array(**kwargs: Any) -> ArrayField:
    kwargs.setdefault("default", list)
    kwargs.setdefault("blank", True)
    return ArrayField(RealField(), **kwargs)


def text_array(**kwargs: Any) -> ArrayField:
    kwargs.setdefault("default", list)
    kwargs.setdefault("blank", True)
    return ArrayField(models.TextField(), **kwargs)


def int_array(**kwargs: Any) -> ArrayField:
    kwargs.setdefault("default", list)
    kwargs.setdefault("blank", True)
    return ArrayField(models.IntegerField(), **kwargs)
