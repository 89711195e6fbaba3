"""The worker's Celery tasks, all on `inference.<model_id>` (names: inference_worker.protocol).

`operations` holds the interactive calls (steer, activations, search ...); `dashboards`, `graphs` and
`transcoders` the long jobs, which claim their Job row and write results through the owning app's
services. Importing this package registers every task (Celery autodiscovery and the worker command).
"""

from __future__ import annotations

from inference.tasks import dashboards, graphs, operations, transcoders

__all__ = ["dashboards", "graphs", "operations", "transcoders"]
