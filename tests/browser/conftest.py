"""Real-browser tests: Debian's headless Chromium driven by Playwright against Django's live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("NP_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# Test runs write screenshots to an ignored folder; `bin/np screenshots` copies them into docs/ on purpose.
SCREENSHOTS = Path(os.environ.get("NP_SCREENSHOTS_DIR",
                                  Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"))

# Playwright's sync API runs an event loop; Django refuses sync ORM calls while one is running.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# Package scope: Playwright's event loop must be gone once the browser tests end, or later tests' async
# views (run through async_to_sync in the main thread) fail with "cannot use AsyncToSync in the same thread".
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    yield from launch_browser()


def launch_browser() -> Iterator[object]:
    """Headless Chromium for one fixture's lifetime. A browser test outside this package defines its own
    module-scoped `browser` fixture over this (importing the package-scoped one leaves Playwright's event
    loop running into later packages' tests)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # Playwright gives every launch a fresh temporary profile (no --user-data-dir needed).
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))  # uncaught exceptions in page scripts
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
