from __future__ import annotations

from django.apps import AppConfig


class FeaturesConfig(AppConfig):
    name = "features"
    verbose_name = "Catalog and dashboards"
