"""The offline demo from an empty database (`bin/np up`): orchestration over every app (catalog,
inference, autointerp), so it lives at the project level; no app imports it."""
