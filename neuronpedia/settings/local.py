"""Local development: the embedded services, DEBUG on unless told otherwise."""

from __future__ import annotations

from neuronpedia.lib import env
from neuronpedia.settings.base import *  # noqa: F403

DEBUG = env.get_bool("DJANGO_DEBUG", default=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
