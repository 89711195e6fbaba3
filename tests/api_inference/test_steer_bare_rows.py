from __future__ import annotations

import pytest

from features.models import Feature
from steering.services import SteerNotFound, _feature_row
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_source_without_dashboards_gets_a_bare_row_inside_its_width() -> None:
    model = factories.make_model()
    source = factories.make_source(model, num_features=16)
    feature = _feature_row(model, source.name, 5)
    assert (feature.source_id, feature.index) == (source.id, 5)
    assert Feature.objects.filter(source=source).count() == 1
    with pytest.raises(SteerNotFound):
        _feature_row(model, source.name, 16)
