"""Load one batch file into a source (the staging copy, during an import): stream, validate, COPY, replace
the file's previous rows, write its checkpoint — all in one transaction, so a crash leaves either the
whole file or nothing of it.

A feature is identified by (source, index) wherever it sits: Neuronpedia's exporter orders features by the
*text* column `index`, so batch 0 holds 0, 1, 10, 100, 1000, ... and the index ranges of files overlap.
Which rows a file owns (and replaces when its sha256 changes), kept in the checkpoint's `row_keys`:
- features: its feature indices (upserted on (source, index); features that left the file are deleted);
- activations: every activation of the feature indices it holds (Neuronpedia writes the activations of
  features [1024n, 1024(n+1)) to batch n; two files of a source may not hold the same feature's);
- explanations: its explanation ids (files are 1,024-row slices, so one feature may span two files).
Old rows are deleted after the COPY by id: rows of this transaction have ids above `nextval` taken first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.db import connection, transaction
from django.utils import timezone

from features.models import (
    Activation,
    Explanation,
    ExplanationModel,
    ExplanationType,
    Feature,
    ImportedFile,
    ImportedFileStatus,
    Source,
)
from transfer.importer.copy import copy_rows
from transfer.importer.errors import ImportFileError
from transfer.importer.layout import ACTIVATION_COLUMNS, EXPLANATION_COLUMNS, FEATURE_COLUMNS
from transfer.importer.reader import iter_records
from transfer.importer.rows import EMBEDDER_BY_WIDTH, RowError, convert, feature_index, split_z_indices


@dataclass
class FileStats:
    rows_read: int = 0
    rows_written: int = 0
    index_min: int | None = None
    index_max: int | None = None
    row_keys: list[str] = field(default_factory=list)

    def see(self, index: int) -> None:
        self.rows_read += 1
        if self.index_min is None or index < self.index_min:
            self.index_min = index
        if self.index_max is None or index > self.index_max:
            self.index_max = index


@dataclass
class SourceContext:
    source: Source
    base: str
    job_id: int | None = None
    _feature_ids: dict[int, int] | None = None
    _skip_triggers: bool | None = None

    def feature_ids(self) -> dict[int, int]:
        if self._feature_ids is None:
            self._feature_ids = dict(Feature.objects.filter(source=self.source).values_list("index", "id"))
        return self._feature_ids

    @property
    def label(self) -> str:
        """The source's name in messages (a staging copy is named after its live source)."""
        return self.source.name.removesuffix(".staging")

    def forget_features(self) -> None:
        self._feature_ids = None

    def can_skip_triggers(self) -> bool:
        """Whether this session may set session_replication_role (superuser; or granted, PostgreSQL 15+)."""
        if self._skip_triggers is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('is_superuser') = 'on', "
                               "current_setting('server_version_num')::int")
                superuser, version = cursor.fetchone()
                if not superuser and version >= 150000:
                    cursor.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
                    superuser = cursor.fetchone()[0]
                self._skip_triggers = bool(superuser)
        return self._skip_triggers


def lock_path(path: str) -> None:
    """Serialise two workers on the same file (transaction-scoped advisory lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [path])


def fast_commit() -> None:
    """This transaction's commit does not wait for its WAL flush. A database crash right after it can lose
    the file's rows, but then it loses the file's checkpoint too (same transaction): the file is simply
    imported again. Atomicity and the order of commits are unchanged."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('synchronous_commit', 'off', true)")


def is_current(path: str, sha256: str, *, staged: bool = False) -> bool:
    return ImportedFile.objects.filter(path=path, staged=staged, status=ImportedFileStatus.DONE,
                                       sha256=sha256).exists()


def load_batch_file(ctx: SourceContext, kind: str, path: str, handle: BinaryIO, *, sha256: str,
                    size: int, staged: bool = True) -> FileStats | None:
    """Import one batch file into `ctx.source`; None when it is already loaded there with this sha256."""
    try:
        with transaction.atomic():
            lock_path(path)
            fast_commit()
            previous = ImportedFile.objects.filter(path=path, staged=staged).first()
            if previous and previous.status == ImportedFileStatus.DONE and previous.sha256 == sha256:
                return None
            if previous and previous.status != ImportedFileStatus.DONE:
                previous = None  # a failed checkpoint owns no rows
            stats = LOADERS[kind](ctx, path, handle, previous)
            ImportedFile.objects.update_or_create(path=path, staged=staged, defaults={
                "kind": kind, "source": ctx.source, "base": ctx.base, "status": ImportedFileStatus.DONE,
                "size": size, "sha256": sha256, "rows_read": stats.rows_read,
                "rows_written": stats.rows_written, "index_min": stats.index_min,
                "index_max": stats.index_max, "row_keys": stats.row_keys, "error": "",
                "job_id": ctx.job_id})
            return stats
    except ImportFileError as exc:
        record_failure(path=path, kind=kind, source=ctx.source, base=ctx.base, job_id=ctx.job_id,
                       error=str(exc), staged=staged)
        raise


def record_failure(*, path: str, kind: str, source: Source | None, base: str, job_id: int | None,
                   error: str, staged: bool = True) -> None:
    """Mark the file FAILED (its rows were rolled back; a staged file's earlier version no longer counts)."""
    ImportedFile.objects.update_or_create(path=path, staged=staged, defaults={
        "kind": kind, "source": source, "base": base, "status": ImportedFileStatus.FAILED, "sha256": "",
        "row_keys": [], "error": error[:5000], "job_id": job_id})


def _defaults_for(model: type, columns: list[str]) -> dict[str, Any]:
    """NOT NULL columns with a Django default that the file does not fill (a COPY skips Django's
    defaults): added to every row with that default."""
    return {f.column: f.get_default() for f in model._meta.concrete_fields
            if not f.null and (f.has_default() or f.empty_strings_allowed) and f.column not in columns
            and not f.primary_key and not f.is_relation}


def _records(path: str, handle: BinaryIO) -> Iterator[tuple[int, dict[str, Any]]]:
    yield from iter_records(handle, path)


def _next_id(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
        return int(cursor.fetchone()[0])


def _check_activation_owners(ctx: SourceContext, path: str, stats: FileStats) -> None:
    """Two activation files of a source may not hold the same feature's examples (each replaces all of
    its features' activations)."""
    if stats.index_min is None:
        return
    mine = set(stats.row_keys)
    others = (ImportedFile.objects.filter(source=ctx.source, kind="activations",
                                          status=ImportedFileStatus.DONE, index_min__lte=stats.index_max,
                                          index_max__gte=stats.index_min)
              .exclude(path=path).values_list("path", "row_keys"))
    for other, keys in others:
        shared = mine.intersection(keys or [])
        if shared:
            raise ImportFileError(path, f"it holds activations of feature {min(shared)}, which {other} holds "
                                        "too")


@contextmanager
def skipping_triggers() -> Iterator[None]:
    """session_replication_role = replica for the block (transaction-local, then put back): no trigger
    fires, the foreign-key checks included. An error inside aborts the transaction, which restores it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('session_replication_role'), "
                       "set_config('session_replication_role', 'replica', true)")
        previous = cursor.fetchone()[0]
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('session_replication_role', %s, true)", [previous])


def _lock_features(path: str, feature_ids: set[int]) -> None:
    """What the skipped FK checks would have done, once per feature instead of once per row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM (SELECT 1 FROM features_feature WHERE id = ANY(%s) "
                       "FOR KEY SHARE) AS locked", [list(feature_ids)])
        found = cursor.fetchone()[0]
    if found != len(feature_ids):
        raise ImportFileError(path, f"{len(feature_ids) - found} of its features were deleted during the "
                                    "import; import the source again")


def _load_features(ctx: SourceContext, path: str, handle: BinaryIO,
                   previous: ImportedFile | None) -> FileStats:
    source, stats, now = ctx.source, FileStats(), timezone.now()
    lines: dict[int, int] = {}
    columns = ["source_id", "index", *(c.column for c in FEATURE_COLUMNS), "created_at"]
    dead_at = len(FEATURE_COLUMNS) - 1  # isDead, last column

    def rows() -> Iterator[list[Any]]:
        for line, record in _records(path, handle):
            try:
                index = feature_index(record, source.num_features, ctx.label)
                values = convert(record, FEATURE_COLUMNS)
            except RowError as exc:
                raise ImportFileError(path, str(exc), line) from None
            if index in lines:
                raise ImportFileError(path, f"feature index {index} repeats line {lines[index]}", line)
            lines[index] = line
            if "isDead" not in record:
                values[dead_at] = values[1] == 0.0  # frac_nonzero == 0: never active
            stats.see(index)
            yield [source.id, index, *values, now]

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pg_temp.np_stage_feature")
        cursor.execute(f"CREATE TEMP TABLE np_stage_feature ON COMMIT DROP AS SELECT {', '.join(columns)} "
                       "FROM features_feature WITH NO DATA")
        copy_rows("np_stage_feature", Feature, columns, rows())
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[2:-1])
        cols = ", ".join(columns)
        cursor.execute(f"INSERT INTO features_feature ({cols}) SELECT {cols} FROM np_stage_feature "
                       f"ON CONFLICT (source_id, index) DO UPDATE SET {updates}")
        stats.rows_written = cursor.rowcount
        cursor.execute("DROP TABLE pg_temp.np_stage_feature")
    stats.row_keys = sorted(lines)
    if previous is not None:  # a changed file: features that left it go, with their rows (ORM cascade)
        gone = set(previous.row_keys or []) - set(lines)
        if gone:
            Feature.objects.filter(source=source, index__in=sorted(gone)).delete()
    ctx.forget_features()
    return stats


def _load_activations(ctx: SourceContext, path: str, handle: BinaryIO,
                      previous: ImportedFile | None) -> FileStats:
    source, stats, now = ctx.source, FileStats(), timezone.now()
    feature_ids = ctx.feature_ids()
    columns = ["feature_id", *(c.column for c in ACTIVATION_COLUMNS), "created_at"]
    extra = _defaults_for(Activation, columns)
    columns += list(extra)
    tail = list(extra.values())

    def rows() -> Iterator[list[Any]]:
        for line, record in _records(path, handle):
            try:
                index = feature_index(record, source.num_features, ctx.label)
                split_z_indices(record)
                values = convert(record, ACTIVATION_COLUMNS)
                tokens, acts, top = values[1], values[2], values[4]
                if len(tokens) != len(acts):
                    raise RowError(f"'tokens' has {len(tokens)} items but 'values' has {len(acts)}")
                if tokens and not 0 <= top < len(tokens):
                    raise RowError(f"'maxValueTokenIndex' {top} is outside the {len(tokens)} tokens")
                feature_id = feature_ids.get(index)
                if feature_id is None:
                    raise RowError(f"feature {index} of {ctx.label} is not imported (its features file "
                                   "must come first)")
            except RowError as exc:
                raise ImportFileError(path, str(exc), line) from None
            stats.see(index)
            used.add(feature_id)
            indices.add(index)
            yield [feature_id, *values, now, *tail]

    first_new = _next_id("features_activation")
    used: set[int] = set()
    indices: set[int] = set()
    if ctx.can_skip_triggers():
        # Without the per-row deferred FK check (25 rows per feature): every feature_id comes from
        # ctx.feature_ids(), and `_lock_features` below re-checks them all at once, locked like the
        # FK check would (FOR KEY SHARE), so they cannot be deleted before this transaction commits.
        with skipping_triggers():
            stats.rows_written = copy_rows("features_activation", Activation, columns, rows())
        _lock_features(path, used)
    else:
        stats.rows_written = copy_rows("features_activation", Activation, columns, rows())
    stats.row_keys = sorted(indices)
    _check_activation_owners(ctx, path, stats)
    owned = sorted(indices | set(previous.row_keys or [] if previous else []))
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM features_activation a USING features_feature f WHERE a.feature_id = f.id "
            "AND f.source_id = %s AND f.index = ANY(%s) AND a.id <= %s", [source.id, owned, first_new])
    return stats


def _load_explanations(ctx: SourceContext, path: str, handle: BinaryIO,
                       previous: ImportedFile | None) -> FileStats:
    source, stats, now = ctx.source, FileStats(), timezone.now()
    feature_ids = ctx.feature_ids()
    columns = ["feature_id", *(c.column for c in EXPLANATION_COLUMNS), "explainer_settings", "created_at"]
    extra = _defaults_for(Explanation, columns)
    columns += list(extra)
    tail = list(extra.values())
    at = {c.key: i for i, c in enumerate(EXPLANATION_COLUMNS)}
    types: set[str] = set()
    llms: set[str] = set()
    seen: dict[str, int] = {}

    def rows() -> Iterator[list[Any]]:
        for line, record in _records(path, handle):
            try:
                index = feature_index(record, source.num_features, ctx.label)
                values = convert(record, EXPLANATION_COLUMNS)
                if values[at["embedding"]] is not None and not values[at["embedder"]]:
                    width = int.from_bytes(values[at["embedding"]][:2], "big")  # pgvector's dims word
                    if width not in EMBEDDER_BY_WIDTH:
                        known = ", ".join(f"{v}: {k}" for k, v in EMBEDDER_BY_WIDTH.items())
                        raise RowError(f"'embedding' has {width} dimensions; no known embedder has that "
                                       f"width ({known})")
                    values[at["embedder"]] = EMBEDDER_BY_WIDTH[width]
                feature_id = feature_ids.get(index)
                if feature_id is None:
                    raise RowError(f"feature {index} of {ctx.label} is not imported (its features file "
                                   "must come first)")
            except RowError as exc:
                raise ImportFileError(path, str(exc), line) from None
            key = values[at["id"]]
            if key in seen:
                raise ImportFileError(path, f"explanation id {key!r} repeats line {seen[key]}", line)
            seen[key] = line
            types.add(values[at["typeName"]] or "")
            llms.add(values[at["explanationModelName"]] or "")
            stats.see(index)
            yield [feature_id, *values, {}, now, *tail]

    first_new = _next_id("features_explanation")
    stats.rows_written = copy_rows("features_explanation", Explanation, columns, rows())
    ExplanationType.objects.bulk_create([ExplanationType(name=n) for n in types if n], ignore_conflicts=True)
    ExplanationModel.objects.bulk_create([ExplanationModel(name=n) for n in llms if n], ignore_conflicts=True)
    stats.row_keys = list(seen)
    keys = list(set(stats.row_keys) | set(previous.row_keys if previous else []))
    with connection.cursor() as cursor:  # an id seen again (here or in another file) replaces the older row
        cursor.execute("DELETE FROM features_explanation WHERE source_id = %s AND id <= %s "
                       "AND external_id = ANY(%s)", [source.id, first_new, keys])
    return stats


LOADERS = {"features": _load_features, "activations": _load_activations,
           "explanations": _load_explanations}
