"""Local instance (`bin/np up`, manage.py): the embedded services. DEBUG stays off unless asked for
(DJANGO_DEBUG=1, or NP_DEV=1 with bin/np): a debug page shows settings, the URLconf and DATABASE_URL to
anyone who can make a request fail."""

from __future__ import annotations

from neuronpedia.lib import env
from neuronpedia.settings.base import *  # noqa: F403

DEBUG = env.get_bool("DJANGO_DEBUG", default=False)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
