"""Completeness check at the end of an import: rows expected from the files vs rows in the database."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Sum

from features.models import Activation, Explanation, Feature, ImportedFile, ImportedFileStatus, Source


def verify_source(source: Source, paths: list[str]) -> dict[str, Any]:
    """Per table: expected (lines of the source's files), imported (rows of the source in the DB)."""
    files = ImportedFile.objects.filter(source=source, path__in=paths)
    done = files.filter(status=ImportedFileStatus.DONE)
    expected = dict(done.values_list("kind").annotate(n=Sum("rows_read")))
    explanations = Explanation.objects.filter(feature__source=source).exclude(external_id="")
    counts = explanations.aggregate(n=Count("id"), distinct=Count("external_id", distinct=True))
    imported = {
        "features": Feature.objects.filter(source=source).count(),
        "activations": Activation.objects.filter(feature__source=source).count(),
        "explanations": counts["n"],
    }
    tables = {kind: {"expected": int(expected.get(kind) or 0), "imported": imported[kind],
                     "ok": int(expected.get(kind) or 0) == imported[kind]} for kind in imported}
    missing = sorted(set(paths) - set(done.values_list("path", flat=True)))
    return {
        "source": f"{source.model_id}/{source.name}",
        "tables": tables,
        "duplicate_explanation_ids": counts["n"] - counts["distinct"],
        "missing_files": missing[:20],
        "ok": all(t["ok"] for t in tables.values()) and not missing and counts["n"] == counts["distinct"],
    }
