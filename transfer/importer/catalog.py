"""What a base (bucket or folder) offers: models -> source sets -> sources, with our local status."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum

from features.models import ImportedFile, ImportedFileStatus, parse_source_id
from transfer.importer.storage import HttpStore, LocalStore


@dataclass
class SourceEntry:
    name: str
    files_done: int = 0
    files_failed: int = 0
    rows: int = 0

    @property
    def imported(self) -> bool:
        return self.files_done > 0


@dataclass
class SetEntry:
    name: str
    sources: list[SourceEntry] = field(default_factory=list)


def list_models(store: LocalStore | HttpStore) -> list[str]:
    return [name for name in store.list_dirs("") if name != "config"]


def list_sets(store: LocalStore | HttpStore, model_id: str) -> list[SetEntry]:
    """Sources of a model grouped by set, in layer order, with checkpoint counts of this instance."""
    grouped: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for name in store.list_dirs(model_id):
        try:
            parsed = parse_source_id(name)
        except ValueError:
            continue  # jlens/ and other folders that are not sources
        grouped[parsed.set_name].append((parsed.layer, name))
    status = {
        row["source__name"]: row for row in ImportedFile.objects.filter(source__model_id=model_id)
        .values("source__name").annotate(
            done=Count("id", filter=Q(status=ImportedFileStatus.DONE)),
            failed=Count("id", filter=Q(status=ImportedFileStatus.FAILED)),
            rows=Sum("rows_written", filter=Q(status=ImportedFileStatus.DONE)))
    }
    sets = []
    for set_name in sorted(grouped):
        entries = []
        for _, name in sorted(grouped[set_name]):
            row = status.get(name, {})
            entries.append(SourceEntry(name, row.get("done", 0), row.get("failed", 0), row.get("rows") or 0))
        sets.append(SetEntry(set_name, entries))
    return sets


def list_source_names(store: LocalStore | HttpStore, model_id: str, set_name: str) -> list[str]:
    return [s.name for entry in list_sets(store, model_id) if entry.name == set_name for s in entry.sources]
