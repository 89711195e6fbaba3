"""Signals the catalog sends for other apps to act on (the catalog imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

# sent inside the transaction that created a person's explanation; kwargs: explanation (autointerp
# scores it once the transaction commits)
human_explanation_created = Signal()
