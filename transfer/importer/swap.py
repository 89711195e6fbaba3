"""Stage, then swap: a source is imported into a hidden staging copy and moved into the live source in one
transaction, so a bad file or a killed worker leaves the live source exactly as it was.

The staging copy is a Source row of the same model and set named `{source}.staging` (PRIVATE, no
dashboards), with its own checkpoints (`ImportedFile.staged`). A restarted import finds it and loads only
the files not yet staged with the same sha256. The swap:
- upserts the metadata (release, model, set, source, inference hosts) from the files;
- features present on both sides: the live row (its id, and so lists, votes and local explanations
  pointing at it) takes the staged row's values; live features absent from the files are deleted;
- activations and imported explanations (those with a Neuronpedia id) of the live source are replaced by
  the staged ones, which move to the live feature rows; features only in the staging copy move whole;
- checkpoints move from the staging copy to the live source, and the staging row is deleted.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from features.models import Explanation, Feature, ImportedFile, ImportedFileKind, Source, Visibility
from transfer.importer.layout import FEATURE_COLUMNS
from transfer.importer.loader import lock_path
from transfer.importer.metadata import SourceMetadata, apply_metadata, ensure_parents

STAGING_SUFFIX = ".staging"


def staging_name(source_name: str) -> str:
    return source_name + STAGING_SUFFIX


def staging_source(meta: SourceMetadata, num_features: int | None) -> Source:
    """The staging copy of `meta`'s source (created, with its model and set when absent)."""
    source_set = ensure_parents(meta)
    source, _ = Source.objects.update_or_create(
        model_id=meta.model_id, name=staging_name(meta.source_name),
        defaults={"source_set": source_set, "layer": int(meta.source_name.split("-", 1)[0]),
                  "num_features": num_features, "visibility": Visibility.PRIVATE, "has_dashboards": False,
                  "inference_enabled": False})
    return source


def purge(source: Source) -> None:
    """Delete a staging copy's rows and checkpoints (set-based: it has no rows of users)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM features_activation a USING features_feature f "
                       "WHERE a.feature_id = f.id AND f.source_id = %s", [source.id])
        cursor.execute("DELETE FROM features_explanationscore s USING features_explanation e "
                       "WHERE s.explanation_id = e.id AND e.source_id = %s", [source.id])
        cursor.execute("DELETE FROM features_explanation WHERE source_id = %s", [source.id])
        cursor.execute("DELETE FROM features_feature WHERE source_id = %s", [source.id])
        ImportedFile.objects.filter(source=source, staged=True).delete()


def swap_in(meta: SourceMetadata, staging: Source, *, base: str, job_id: int | None) -> Source:
    """Move the staging copy into the live source (one transaction); returns the live source."""
    with transaction.atomic():
        lock_path(f"{meta.folder}/swap")
        live = apply_metadata(meta, base=base, job_id=job_id)
        _merge_features(live, staging)
        ImportedFile.objects.filter(source=live, staged=False).exclude(
            kind__in=[ImportedFileKind.METADATA, ImportedFileKind.CONFIG]).delete()
        ImportedFile.objects.filter(source=staging, staged=True).update(source=live, staged=False)
        staging.delete()
    return live


def _execute(sql: str, params: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _merge_features(live: Source, staging: Source) -> None:
    pair = ("FROM features_feature s WHERE s.source_id = %(staging)s AND l.source_id = %(live)s "
            "AND s.index = l.index")
    ids = {"live": live.id, "staging": staging.id}
    if Feature.objects.filter(source=live).exists():
        columns = [c.column for c in FEATURE_COLUMNS]
        sets = ", ".join(f"{c} = s.{c}" for c in columns)
        _execute(f"UPDATE features_feature l SET {sets} {pair}", ids)
        staged = Feature.objects.filter(source=staging).values("index")
        Feature.objects.filter(source=live).exclude(index__in=staged).delete()
        _execute("DELETE FROM features_activation a USING features_feature l "
                 "WHERE a.feature_id = l.id AND l.source_id = %s", [live.id])
        Explanation.objects.filter(source=live).exclude(external_id="").delete()
        for table in ("features_activation", "features_explanation"):
            _execute(f"UPDATE {table} c SET feature_id = l.id FROM features_feature s, features_feature l "
                     "WHERE c.feature_id = s.id AND s.source_id = %(staging)s AND l.source_id = %(live)s "
                     "AND s.index = l.index", ids)
        _execute("DELETE FROM features_feature s USING features_feature l WHERE s.source_id = %(staging)s "
                 "AND l.source_id = %(live)s AND s.index = l.index", ids)
    _execute("UPDATE features_feature SET source_id = %s WHERE source_id = %s", [live.id, staging.id])
    # the trigger of migration 0006 sets each row's source from its feature again
    _execute("UPDATE features_explanation SET source_id = %s WHERE source_id = %s", [live.id, staging.id])
