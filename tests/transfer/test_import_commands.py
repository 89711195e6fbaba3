"""The import_source / import_config commands: progress output, verification table, exit code on failure."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from features.models import Activation, ExplanationType
from transfer.importer.synthetic import SyntheticSpec, write_source

pytestmark = pytest.mark.django_db
SPEC = SyntheticSpec(num_features=8, acts_per_feature=2, context=4, batch_size=4)


def test_import_source_command_prints_progress_and_the_verification(tmp_path: Path) -> None:
    write_source(tmp_path, SPEC)
    out = io.StringIO()
    call_command("import_source", "gpt2-small", "6-res-jb", "--base", str(tmp_path), stdout=out)
    text = out.getvalue()
    assert "gpt2-small/6-res-jb/activations/batch-1.jsonl.gz: 8 rows" in text
    assert "6-res-jb: OK (files: 6 imported, 0 skipped)" in text
    assert "activations   expected         16  imported         16" in text
    assert Activation.objects.count() == 16
    out = io.StringIO()
    call_command("import_source", "gpt2-small", "--set", "res-jb", "--base", str(tmp_path), stdout=out)
    assert "6-res-jb: OK (files: 0 imported, 6 skipped)" in out.getvalue()


def test_import_source_command_fails_with_file_and_line(tmp_path: Path) -> None:
    folder = write_source(tmp_path, SPEC)
    (folder / "features" / "batch-1.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CommandError, match=r"features/batch-1.jsonl.gz: truncated or corrupt gzip data"):
        call_command("import_source", "gpt2-small", "6-res-jb", "--base", str(tmp_path), stdout=io.StringIO())


def test_import_source_command_reports_a_missing_base(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_source", "gpt2-small", "6-res-jb", "--base", str(tmp_path / "nope"),
                     stdout=io.StringIO())


def test_import_config_command_loads_the_catalogs(tmp_path: Path) -> None:
    write_source(tmp_path, SPEC)
    out = io.StringIO()
    call_command("import_config", "--base", str(tmp_path), stdout=out)
    assert "config/explanation_type.jsonl: 1 rows" in out.getvalue()
    assert ExplanationType.objects.filter(name="oai_token-act-pair").exists()
