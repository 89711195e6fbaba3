from __future__ import annotations

from typing import Any

import pytest

from tests.ui.data import make_rich_catalog


@pytest.fixture
def rich(db: None, alice: Any) -> dict[str, Any]:
    return make_rich_catalog(owner=alice)
