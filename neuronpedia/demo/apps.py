from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "neuronpedia.demo"
    label = "demo"
    verbose_name = "Offline demo"
