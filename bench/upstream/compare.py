"""Every field of every row: source database against ours, against Neuronpedia's database loaded from our
export, and the converter's files against ours."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from transfer.importer.layout import (  # a pure module: our columns
    ACTIVATION_COLUMNS,
    CONFIG_FIELDS,
    EXPLANATION_COLUMNS,
    FEATURE_COLUMNS,
    MODEL_FIELDS,
    RELEASE_FIELDS,
    SOURCE_FIELDS,
    SOURCESET_FIELDS,
)
from upstream.common import (
    CONV_MODEL,
    CONV_SET,
    CONV_SOURCE,
    DEFAULT_CREATOR,
    MODEL,
    PUBLIC_USER,
    RELEASE,
    SET,
    SOURCE,
    SOURCES,
    _jsonl,
    manage,
)

# ---------------------------------------------------------------- comparison


def f32(values: Any) -> Any:
    return None if values is None else np.asarray(values, dtype=np.float32)


def same(kind: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if kind in ("float", "floats", "vector"):
        if isinstance(a, str):
            a = json.loads(a)
        if isinstance(b, str):
            b = json.loads(b)
        x, y = f32(a), f32(b)
        return x.shape == y.shape and bool(np.array_equal(x, y))
    if kind == "int":
        return int(a) == int(b)
    return a == b


class Tally:
    def __init__(self) -> None:
        self.compared = 0
        self.bad: dict[str, list[str]] = defaultdict(list)

    def check(self, where: str, column: str, kind: str, expected: Any, got: Any) -> None:
        self.compared += 1
        if not same(kind, expected, got):
            self.bad[column].append(f"{where}: expected {str(expected)[:80]!r}, got {str(got)[:80]!r}")

    def missing(self, what: str, keys: set[Any]) -> None:
        if keys:
            self.bad[what].append(f"{len(keys)} rows, e.g. {sorted(keys)[:3]}")

    def summary(self) -> str:
        if not self.bad:
            return f"{self.compared} values equal, 0 mismatches"
        parts = [f"{col}: {len(v)} (e.g. {v[0]})" for col, v in sorted(self.bad.items())]
        return f"{sum(len(v) for v in self.bad.values())} mismatches in {self.compared} values; " + "; ".join(
            parts
        )


def src_rows(conn: psycopg.Connection[Any], table: str, where: str = "") -> list[dict[str, Any]]:
    cols = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]
    select = ", ".join(f'"{c}"::text' if c == "embedding" else f'"{c}"' for c in cols)
    with conn.cursor() as cur:
        cur.execute(f'SELECT {select} FROM "{table}" {where}')
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


BATCH_TABLES = (
    ("Neuron", FEATURE_COLUMNS, "features_feature", None),
    ("Activation", ACTIVATION_COLUMNS, "features_activation", "id"),
    ("Explanation", EXPLANATION_COLUMNS, "features_explanation", "id"),
)


def compare_ours(
    src: psycopg.Connection[Any], ours: psycopg.Connection[Any], exported: dict[str, list[str]]
) -> Tally:
    """Every column their exporter writes, of every row of the source, against our database."""
    tally = Tally()
    for source in SOURCES:
        _compare_source(src, ours, exported, source, tally)
    _compare_records(src, ours, tally)
    return tally


def _compare_source(
    src: psycopg.Connection[Any],
    ours: psycopg.Connection[Any],
    exported: dict[str, list[str]],
    source: str,
    tally: Tally,
) -> None:
    sid = ours.execute(
        "SELECT id FROM features_source WHERE model_id = %s AND name = %s", [MODEL, source]
    ).fetchone()
    if sid is None:
        tally.bad["source"].append(f"no live source {source}")
        return
    for table, columns, ours_table, key in BATCH_TABLES:
        cols = [c for c in columns if not c.ours and c.key in exported[table]]
        where = f"WHERE \"modelId\" = '{MODEL}' AND layer = '{source}'"
        if table == "Activation":
            where += f" AND \"creatorId\" IN ('{DEFAULT_CREATOR}', '{PUBLIC_USER}')"
        expected = {(r["index"], r["id"]) if key else r["index"]: r for r in src_rows(src, table, where)}
        got = _ours_rows(ours, sid[0], cols, ours_table, key)
        tally.missing(f"{table} rows missing", set(expected) - set(got))
        tally.missing(f"{table} rows extra", set(got) - set(expected))
        for k in set(expected) & set(got):
            for c in cols:
                value = expected[k][c.key]
                if c.key in ("creatorId", "authorId"):
                    value = DEFAULT_CREATOR  # their exporter writes DEFAULT_CREATOR_ID over every one
                tally.check(f"{table} {source} {k}", f"{table}.{c.key}", c.kind, value, got[k][c.column])


def _ours_rows(
    ours: psycopg.Connection[Any], source_id: int, cols: list[Any], ours_table: str, key: str | None
) -> dict[Any, dict[str, Any]]:
    """Our rows of a source by index (features) or (index, Neuronpedia id), with the columns `cols`."""
    select = ", ".join(f"t.{c.column}::text" if c.kind == "vector" else f"t.{c.column}" for c in cols)
    join = "" if ours_table == "features_feature" else " JOIN features_feature f ON f.id = t.feature_id"
    alias = "t" if ours_table == "features_feature" else "f"
    ext = ", t.external_id" if key else ""
    got = {}
    for row in ours.execute(
        f"SELECT {alias}.index{ext}, {select} FROM {ours_table} t{join} WHERE {alias}.source_id = %s",
        [source_id],
    ).fetchall():
        k = (str(row[0]), row[1]) if key else str(row[0])
        got[k] = dict(zip([c.column for c in cols], row[2 if key else 1 :], strict=True))
    return got


def compare_stored(
    npdb: psycopg.Connection[Any],
    ours: psycopg.Connection[Any],
    model: str,
    source: str,
    tally: Tally | None = None,
    skip: tuple[str, ...] = (),
) -> Tally:
    """What Neuronpedia's own import stored from some files against what ours stored from the same files:
    every column of every feature, activation and explanation that both have (but `skip`)."""
    tally = tally or Tally()
    sid = ours.execute(
        "SELECT id FROM features_source WHERE model_id = %s AND name = %s", [model, source]
    ).fetchone()
    if sid is None:
        tally.bad["source"].append(f"no live source {source}")
        return tally
    for table, columns, ours_table, key in BATCH_TABLES:
        cols = [c for c in columns if not c.ours and c.key not in skip]
        where = f"WHERE \"modelId\" = '{model}' AND layer = '{source}'"
        expected = {(r["index"], r["id"]) if key else r["index"]: r for r in src_rows(npdb, table, where)}
        got = _ours_rows(ours, sid[0], cols, ours_table, key)
        tally.missing(f"{table} rows missing", set(expected) - set(got))
        tally.missing(f"{table} rows extra", set(got) - set(expected))
        for k in set(expected) & set(got):
            for c in cols:
                value, mine = expected[k][c.key], got[k][c.column]
                if value is None and not c.nullable and mine in ("", [], False):
                    NULL_AS_EMPTY.append(f"{table}.{c.key}")  # a NOT NULL column of ours
                    continue
                tally.check(f"{table} {k}", f"{table}.{c.key}", c.kind, value, mine)
    return tally


RECORDS = (
    ("Model", f"id = '{MODEL}'", MODEL),
    ("SourceRelease", f"name = '{RELEASE}'", RELEASE),
    ("SourceSet", f"name = '{SET}'", f"{MODEL}/{SET}"),
    *(("Source", f"id = '{s}'", f"{MODEL}/{s}") for s in SOURCES),
    ("ExplanationType", "true", None),
    ("ExplanationModelType", "true", None),
    ("ExplanationScoreType", "true", None),
    ("ExplanationScoreModel", "true", None),
    ("EvalType", "true", None),
    ("InferenceHostSource", "true", None),
)


def exporter_value(table: str, column: str, value: Any) -> Any:
    """What their exporter writes for a column: DEFAULT_CREATOR_ID over every creatorId/authorId, and
    OVERRIDE_INSTANCE_HOST_URL ("") over InferenceHostSource.hostUrl."""
    if column in ("creatorId", "authorId"):
        return DEFAULT_CREATOR
    if table == "InferenceHostSource" and column == "hostUrl":
        return ""
    return value


def _jsonish(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row as their exporter writes it: datetimes isoformat(), creatorId/hostUrl replaced."""
    return {
        k: exporter_value(table, k, v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
    }


def _compare_records(src: psycopg.Connection[Any], ours: psycopg.Connection[Any], tally: Tally) -> None:
    """Metadata and catalog rows: the whole row is kept (UpstreamRecord), every column equal."""
    for table, where, key in RECORDS:
        for row in src_rows(src, table, f"WHERE {where}"):
            k = key or (row["id"] if table == "InferenceHostSource" else row["name"])
            found = ours.execute(
                'SELECT record FROM features_upstreamrecord WHERE "table" = %s AND key = %s', [table, k]
            ).fetchone()
            if found is None:
                tally.bad[f"{table} record"].append(f"{k}: not kept")
                continue
            for column, value in _jsonish(table, row).items():
                tally.check(
                    f"{table} {k}", f"{table}.{column}", "json", value, found[0].get(column, "<absent>")
                )
    _compare_mapped(src, ours, tally)


HOST_FIELDS = {
    "id": "id",
    "name": "name",
    "hostUrl": "host_url",
    "engine": "engine",
    "modelId": "model_id",
    "runpodServerlessUrl": "runpod_serverless_url",
}
MAPPED = (
    ("Model", f"id = '{MODEL}'", "features_model", "id", MODEL_FIELDS),
    ("SourceRelease", f"name = '{RELEASE}'", "features_sourcerelease", "name", RELEASE_FIELDS),
    ("SourceSet", f"name = '{SET}'", "features_sourceset", "name", SOURCESET_FIELDS),
    *(("Source", f"id = '{s}'", "features_source", "name", SOURCE_FIELDS) for s in SOURCES),
    ("InferenceHostSource", "true", "features_inferencehostsource", "id", HOST_FIELDS),
    *(
        (table, "true", f"features_{model.lower()}", "name", fields)
        for table, (model, fields) in (
            (t, CONFIG_FIELDS[f])
            for f, t in (
                ("explanation_type.jsonl", "ExplanationType"),
                ("explanation_model_type.jsonl", "ExplanationModelType"),
                ("explanation_score_type.jsonl", "ExplanationScoreType"),
                ("explanation_score_model.jsonl", "ExplanationScoreModel"),
                ("eval_type.jsonl", "EvalType"),
            )
        )
    ),
)
NULL_AS_EMPTY: list[str] = []


def _compare_mapped(src: psycopg.Connection[Any], ours: psycopg.Connection[Any], tally: Tally) -> None:
    """Metadata and catalog columns we model: our column against the source row. A NULL there that our
    NOT NULL column holds as ''/[]/{} is listed (NULL_AS_EMPTY), not counted: the export writes it back as
    NULL from the kept row, which the round trip to Neuronpedia's database checks."""
    NULL_AS_EMPTY.clear()
    for table, where, our_table, pk, fields in MAPPED:
        pk_np = next(k for k, v in fields.items() if v == pk)
        for row in src_rows(src, table, f"WHERE {where}"):
            keys = [k for k in fields if k in row]
            extra = " AND model_id = %s" if our_table in ("features_sourceset", "features_source") else ""
            got = ours.execute(
                f"SELECT {', '.join(fields[k] for k in keys)} FROM {our_table} WHERE {pk} = %s" + extra,
                [row[pk_np], *([MODEL] if extra else [])],
            ).fetchone()
            if got is None:
                tally.bad[f"{table} row missing"].append(str(row[pk_np]))
                continue
            for k, value in zip(keys, got, strict=True):
                expected = exporter_value(table, k, row[k])
                if expected is None and value in ("", [], {}):
                    NULL_AS_EMPTY.append(f"{table}.{k}")
                    continue
                tally.check(
                    f"{table} {row[pk_np]}", f"{table}.{k} (ours: {fields[k]})", "json", expected, value
                )


def compare_np(
    src: psycopg.Connection[Any], dst: psycopg.Connection[Any], exported: dict[str, list[str]]
) -> Tally:
    """Source database against Neuronpedia's database loaded from our export: the exported columns."""
    tally = Tally()
    kinds = {
        c.key: c.kind for cols in (FEATURE_COLUMNS, ACTIVATION_COLUMNS, EXPLANATION_COLUMNS) for c in cols
    }
    for table, _, _, key in BATCH_TABLES:
        where = f"WHERE \"modelId\" = '{MODEL}'"
        exp_where = where + (
            f" AND \"creatorId\" IN ('{DEFAULT_CREATOR}', '{PUBLIC_USER}')" if table == "Activation" else ""
        )
        pk = (lambda r: r["id"]) if key else (lambda r: (r["layer"], r["index"]))
        expected = {pk(r): r for r in src_rows(src, table, exp_where)}
        got = {pk(r): r for r in src_rows(dst, table, where)}
        tally.missing(f"{table} rows missing", set(expected) - set(got))
        tally.missing(f"{table} rows extra", set(got) - set(expected))
        for k in set(expected) & set(got):
            for column in exported[table]:
                value = exporter_value(table, column, expected[k][column])
                tally.check(
                    f"{table} {k}", f"{table}.{column}", kinds.get(column, "str"), value, got[k][column]
                )
    for table, where, _ in RECORDS:
        pk = "id" if table in ("Model", "Source", "InferenceHostSource") else "name"
        got = {r[pk]: r for r in src_rows(dst, table, f"WHERE {where}")}
        for row in src_rows(src, table, f"WHERE {where}"):
            if row[pk] not in got:
                tally.bad[f"{table} rows missing"].append(str(row[pk]))
                continue
            other = got[row[pk]]
            for column, value in row.items():
                value = exporter_value(table, column, value)
                if table == "SourceSet" and column == "urls" and value is None:
                    value = []  # their route: `urls: line.urls ?? []`
                tally.check(f"{table} {row[pk]}", f"{table}.{column}", "json", value, other[column])
    return tally


def fingerprint(ours: psycopg.Connection[Any]) -> str:
    """Every row (ids and timestamps included) of the live source: its features, activations, explanations,
    checkpoints, source/set/model/release rows and the kept upstream records."""
    row = ours.execute(
        "SELECT md5(string_agg(x, '' ORDER BY x)) FROM ("
        " SELECT f::text x FROM features_feature f JOIN features_source s ON s.id = f.source_id"
        "  WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)"
        " UNION ALL SELECT a::text FROM features_activation a JOIN features_feature f ON f.id = a.feature_id"
        "  JOIN features_source s ON s.id = f.source_id WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)"
        " UNION ALL SELECT e::text FROM features_explanation e JOIN features_feature f ON f.id = e.feature_id"
        "  JOIN features_source s ON s.id = f.source_id WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)"
        " UNION ALL SELECT i::text FROM features_importedfile i JOIN features_source s ON s.id = i.source_id"
        "  WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s) AND NOT i.staged"
        " UNION ALL SELECT s::text FROM features_source s WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)"
        " UNION ALL SELECT m::text FROM features_model m WHERE m.id = %(m)s"
        " UNION ALL SELECT ss::text FROM features_sourceset ss WHERE ss.model_id = %(m)s"
        " UNION ALL SELECT r::text FROM features_sourcerelease r"
        " UNION ALL SELECT u::text FROM features_upstreamrecord u) q",
        {"m": MODEL, "s": list(SOURCES)},
    ).fetchone()
    return str(row[0] if row else None)


VIEW_PATHS = (
    f"/api/feature/{MODEL}/{SOURCE}/0",
    f"/api/feature/{MODEL}/{SOURCE}.staging/0",
    f"/{MODEL}/{SOURCE}/0",
    f"/{MODEL}/{SOURCE}.staging/0",
)


def public_view() -> list[int]:
    """HTTP status of feature 0 of the big source and of its staging copy, API and page, as a visitor."""
    code = (
        "from django.test import Client; c = Client(SERVER_NAME='localhost'); "
        f"print('STATUS', *[c.get(p).status_code for p in {VIEW_PATHS!r}])"
    )
    _, out = manage("shell", "-c", code)
    line = next((ln for ln in out.splitlines() if ln.startswith("STATUS")), "STATUS")
    return [int(x) for x in line.split()[1:]]


def live_counts(ours: psycopg.Connection[Any]) -> str:
    row = ours.execute(
        "SELECT (SELECT count(*) FROM features_source WHERE model_id = %(m)s AND name = ANY(%(s)s)),"
        " (SELECT count(*) FROM features_feature f JOIN features_source s ON s.id = f.source_id"
        "   WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)),"
        " (SELECT count(*) FROM features_feature f JOIN features_source s ON s.id = f.source_id"
        "   WHERE s.model_id = %(m)s AND s.name = ANY(%(st)s))",
        {"m": MODEL, "s": list(SOURCES), "st": [s + ".staging" for s in SOURCES]},
    ).fetchone()
    assert row is not None
    return f"live sources {row[0]}, live features {row[1]}, staged features {row[2]}"


def compare_files(base: Path, ours: psycopg.Connection[Any]) -> Tally:
    """Every key of every line the converter wrote, against our database (keys we do not keep are listed)."""
    tally = Tally()
    folder = base / CONV_MODEL / CONV_SOURCE
    sid = ours.execute(
        "SELECT id FROM features_source WHERE model_id = %s AND name = %s", [CONV_MODEL, CONV_SOURCE]
    ).fetchone()
    if sid is None:
        tally.bad["source"].append("not imported")
        return tally
    head = {"modelId", "layer", "index"}
    for kind, columns, ours_table, key in (
        ("features", *BATCH_TABLES[0][1:]),
        ("activations", *BATCH_TABLES[1][1:]),
    ):
        cols = {c.key: c for c in columns if not c.ours}
        join = "" if kind == "features" else " JOIN features_feature f ON f.id = t.feature_id"
        alias = "t" if kind == "features" else "f"
        select = ", ".join(f"t.{c.column}" for c in cols.values())
        rows = ours.execute(
            f"SELECT {alias}.index{', t.external_id' if key else ''}, {select} FROM {ours_table} t"
            f"{join} WHERE {alias}.source_id = %s",
            [sid[0]],
        ).fetchall()
        got = {
            ((str(r[0]), r[1]) if key else str(r[0])): dict(zip(cols, r[2 if key else 1 :], strict=True))
            for r in rows
        }
        lines = [line for path in sorted(folder.glob(f"{kind}/*.jsonl.gz")) for line in _jsonl(path)]
        expected = {((str(r["index"]), r["id"]) if key else str(r["index"])): r for r in lines}
        tally.missing(f"{kind} rows missing", set(expected) - set(got))
        tally.missing(f"{kind} rows extra", set(got) - set(expected))
        for k in set(expected) & set(got):
            for name, value in expected[k].items():
                if name in head or (key and name == "id"):
                    continue
                if name == "zIndices":  # their import: split, or (null) the columns' default []
                    for half, column in enumerate(("zKIndices", "zQIndices")):
                        part = [] if value is None else value[half]
                        tally.check(f"{kind} {k}", f"{kind}.{column}", "ints", part, got[k][column])
                    continue
                if name not in cols:
                    NOT_KEPT.add(f"{kind}.{name}")
                    continue
                if cols[name].kind == "strs" and value is not None:
                    value = [v.replace("\x00", " ") for v in value]  # importJsonlString's \u0000 -> " "
                tally.check(f"{kind} {k}", f"{kind}.{name}", cols[name].kind, value, got[k][name])
    for filename, table, pk in (
        ("model.jsonl", "Model", CONV_MODEL),
        ("source.jsonl", "Source", f"{CONV_MODEL}/{CONV_SOURCE}"),
        ("sourceset.jsonl", "SourceSet", f"{CONV_MODEL}/{CONV_SET}"),
        ("release.jsonl", "SourceRelease", "bench-dash-release"),
    ):
        line = _jsonl(folder / filename)[0]
        found = ours.execute(
            'SELECT record FROM features_upstreamrecord WHERE "table" = %s AND key = %s', [table, pk]
        ).fetchone()
        for name, value in line.items():
            tally.check(
                f"{table} {pk}",
                f"{table}.{name}",
                "json",
                value,
                found[0].get(name, "<absent>") if found else "<no record>",
            )
    return tally


NOT_KEPT: set[str] = set()
