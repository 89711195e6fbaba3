from __future__ import annotations

from django.apps import AppConfig


class AutointerpConfig(AppConfig):
    name = "autointerp"
