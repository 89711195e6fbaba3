"""In a real browser: the home page shows the transcoder training's live progress and message; the admin
button queues (here: finds) the training job; the job page shows the per-layer report of a real (tiny)
training; then the home page links to the graphs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inference.demo import DEMO_MODEL_ID, register_transcoder_set
from inference.tasks.transcoders import report
from inference.transcoder_training import start_training_job, training_params
from inference_worker import training_transcoders as tt
from inference_worker.models import build_tiny_model
from neuronpedia.jobs import services as jobs
from tests import factories
from tests.browser.conftest import launch_browser, page, screenshot  # noqa: F401 - fixtures
from tests.browser.helpers import log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """This module's own browser: closed (with Playwright's event loop) when the module ends."""
    yield from launch_browser()


def _tiny_training(root: Path) -> tuple[Any, Any]:
    cfg = tt.TranscoderTrainConfig(model_id=DEMO_MODEL_ID, n_tokens=1024, context_size=32, d_transcoder=64,
                                   k=4, eval_tokens=128, splice_eval_tokens=64, model_dtype="float32")
    model = build_tiny_model(seed=0, n_layers=2, d_model=64)
    return cfg, tt.train_transcoders(model, cfg, tt.version_dir(cfg, root))


def test_training_progress_admin_button_report_and_ready_banner(live_server: Any, page: Any,  # noqa: F811
                                                                 admin_user: Any, tmp_path: Path) -> None:
    factories.make_model(DEMO_MODEL_ID, layers=2, dimension=64, instruct=True)
    job = start_training_job(model_id=DEMO_MODEL_ID, params=training_params(), enqueue=False)
    jobs.claim_job(job.id)
    jobs.record_progress(job.id, done=80, total=352, checkpoint={
        "path": "/srv/x", "step": 80, "message": "step 80/320: mean NMSE 0.741, dead 12.0%, 140 tokens/s"})
    page.goto(live_server.url + "/")
    banner = page.locator("#graphs-banner[data-state='training']")
    assert "step 80/320: mean NMSE 0.741" in banner.inner_text()
    assert "/srv/x" not in banner.inner_text()
    jobs.record_progress(job.id, done=176, total=352, checkpoint={"message": "step 160/320: mean NMSE 0.62"})
    page.wait_for_function("document.querySelector('#graphs-banner progress').value == 50")  # live (htmx)
    assert "step 160/320" in banner.inner_text()
    screenshot(page, "home-transcoders-training")

    log_in(page, live_server, admin_user)
    page.goto(live_server.url + "/admin/jobs/job/")
    page.locator("#train-transcoders").click()
    page.wait_for_url(f"**/jobs/{job.id}/")
    assert "running" in page.locator(".messagelist, .messages, body").first.inner_text().lower()

    cfg, result = _tiny_training(tmp_path)
    register_transcoder_set(folder=Path(result.path))
    jobs.record_progress(job.id, done=352, total=352)
    jobs.finish_job(job.id, result=report(result.to_dict(), cfg))
    page.goto(live_server.url + f"/jobs/{job.id}/")
    rows = page.locator("#transcoder-report tbody tr")
    assert rows.count() == 2
    first = rows.nth(0).locator("td")
    assert first.nth(0).inner_text() == "0"
    assert float(first.nth(1).inner_text()) == pytest.approx(result.layers[0]["explained_variance"], abs=1e-3)
    assert "next-token agreement" in page.locator("#replacement-metrics").inner_text()
    screenshot(page, "job-transcoders-report")
    page.goto(live_server.url + "/")
    assert page.locator("#graphs-banner[data-state='ready'] #graphs-link").is_visible()
