"""Round trip through Neuronpedia's own code: their schema, exporter, converter and import route against our
importer and exporter, every field of every row compared. One command; prints a table of steps.

    .venv/bin/python bench/upstream_roundtrip.py /path/to/neuronpedia-checkout [--features 2200] [--keep]

The checkout is an extracted copy of github.com/hijohnnylin/neuronpedia: its files are run or read from that
path, nothing of it is copied here. Scratch databases `np_upstream_*` on the embedded PostgreSQL (superuser
from .data/postgres-credentials.json) are dropped at the end unless --keep. The parts live in
bench/upstream/. Steps:
1. `np_upstream_src`: every Prisma migration (apps/webapp/prisma/migrations/*/migration.sql) in order, then
   seeded through SQL (upstream/seed.py): a model, release, set, three sources (N features whose text-ordered
   batches overlap; 300 with a NULL saelensConfig; 5 steering vectors with no activations), an inference
   host, the five catalogs, activations (some of a non-public user, which their exporter drops) and
   explanations with 256-d embeddings (their column is vector(256): all-MiniLM-L6-v2 embeddings of the
   descriptions cut to 256 dims), NULLs and empty arrays in nullable columns.
2. Their `export-data.py`, unchanged, in /tmp/np_upstream_venv (psycopg2-binary, tqdm, python-dotenv, typer,
   orjson from PyPI), configured by its env variables. Its one network call, `requests.post(
   "https://neuronpedia.org/api/global")`, is answered by a stub `requests` module first on PYTHONPATH
   that returns the release/set/source tree of the scratch database.
3. Their import route under Node (upstream/np_import.py): apps/webapp/app/api/admin/import/route.ts with
   lib/db/import.ts and lib/utils/s3.ts, unchanged, transpiled by TypeScript at load time; the real Prisma
   Client 5.22 generated from their schema.prisma (its zod generator and binaryTargets dropped: no engine
   binaries can be downloaded here) on Prisma's wasm query engine through @prisma/adapter-pg; the real `pg`.
   Stubs: the S3 SDK (a local folder, keys in S3's lexical order), next/server, the auth wrapper, env.
   Run once on their own export as a control.
4. Ours (`manage.py` commands in subprocesses, database `np_upstream_ours` made by `migrate`): import killed
   (SIGKILL) after its first activation file, then whole; compare; a second import must change nothing; a
   `--force` re-import killed mid-way must leave the live sources as they were; what a visitor sees of the
   live source and its hidden staging copy (API and page) after each kill; the source database edited and
   exported again, imported again, compared again.
5. Our export, loaded into fresh databases from their migrations by their route (3) and by their SQL
   translated to psycopg (importJsonlString's column query and `INSERT ... SELECT ... FROM
   jsonb_to_recordset($1::jsonb) ... ON CONFLICT DO NOTHING`, read out of import.ts at run time; Prisma
   `create`/`upsert` validated from schema.prisma); each compared with the source database.
6. Their `convert-saedashboard-to-neuronpedia-export.py` on SAEDashboard-format batch files, imported by us,
   every key of every line compared.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # transfer.importer.layout, imported by upstream.compare
from upstream.common import (  # noqa: E402
    CONV_MODEL,
    CONV_SOURCE,
    DST,
    DST_CONV,
    DST_SQL,
    DST_THEIRS,
    MODEL,
    OURS,
    ROWS,
    SOURCE2,
    SOURCES,
    SRC,
    VENV,
    WORK,
    _source_files,
    apply_migrations,
    connect,
    creds,
    drop,
    file_summary,
    manage,
    recreate,
    step,
    timed,
)
from upstream.compare import (  # noqa: E402
    NOT_KEPT,
    NULL_AS_EMPTY,
    VIEW_PATHS,
    Tally,
    compare_files,
    compare_np,
    compare_ours,
    compare_stored,
    fingerprint,
    live_counts,
    public_view,
)
from upstream.np_import import (  # noqa: E402
    ensure_node,
    new_np_db,
    np_import,
    np_route,
    route_errors,
)
from upstream.seed import (  # noqa: E402
    change_upstream,
    seed,
)
from upstream.theirs import (  # noqa: E402
    ensure_venv,
    exported_columns,
    run_converter,
    run_exporter,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", type=Path, help="extracted Neuronpedia repository")
    parser.add_argument("--features", type=int, default=2200, help="features of the big source")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args()
    checkout: Path = args.checkout.resolve()
    WORK.mkdir(parents=True, exist_ok=True)
    exported = exported_columns(checkout)
    ok = True
    try:
        ok &= run(checkout, exported, args.features)
    except Exception as exc:  # noqa: BLE001 - the table shows where it stopped
        step("stopped", 0.0, f"{type(exc).__name__}: {str(exc)[:2000]}")
        ok = False
    finally:
        if not args.keep:
            for db in (SRC, OURS, DST, DST_SQL, DST_THEIRS, DST_CONV):
                drop(db)
    width = max(len(r[0]) for r in ROWS)
    print(f"\n{'step':<{width}}  {'seconds':>8}  result")
    for name, seconds, result in ROWS:
        print(f"{name:<{width}}  {seconds}  {result}")
    print(f"\n{'PASS' if ok else 'FAIL'}" + (f": {'; '.join(FAILED)}" if FAILED else ""))
    return 0 if ok else 1


FAILED: list[str] = []
# never in their export: their import stores the default [], ours keeps NULL (importer/layout.py)
NOT_EXPORTED_NULL = ("correlated_features_indices", "correlated_features_pearson", "correlated_features_l1")


def _stored_all(theirs: Any, ours: Any) -> Tally:
    tally = Tally()
    NULL_AS_EMPTY.clear()
    for source in SOURCES:
        compare_stored(theirs, ours, MODEL, source, tally, skip=NOT_EXPORTED_NULL)
    return tally


def check(passed: bool) -> bool:
    """A check of the last step: a failure is listed under the table."""
    if not passed:
        FAILED.append(ROWS[-1][0].strip() if ROWS else "?")
    return passed


def _visitor_sees(expected: list[int]) -> bool:
    t0 = time.monotonic()
    seen = public_view()
    step(
        "  -> a visitor sees (HTTP status)",
        time.monotonic() - t0,
        ", ".join(f"{path} {code}" for path, code in zip(VIEW_PATHS, seen, strict=False)),
    )
    return seen == expected


def run(checkout: Path, exported: dict[str, list[str]], n: int) -> bool:
    ok = True
    timed(
        "their migrations -> np_upstream_src",
        lambda: apply_migrations(checkout, SRC),
        lambda k: f"{k} migrations applied",
    )
    src = connect(SRC)
    timed(
        "seed source database (SQL)",
        lambda: seed(src, n),
        lambda c: ", ".join(f"{k} {v}" for k, v in c.items()),
    )
    timed("their exporter's venv", ensure_venv, lambda _: f"{VENV}")
    base = timed("their export-data.py (unchanged)", lambda: run_exporter(checkout, src), file_summary)
    have_node = shutil.which("node") is not None and shutil.which("npm") is not None
    if have_node:
        timed("their webapp's Prisma under Node", lambda: ensure_node(checkout), str)
        theirs = new_np_db(checkout, DST_THEIRS)
        timed(
            "control: their import route on their export",
            lambda: route_errors([np_route(checkout, DST_THEIRS, base, s) for s in SOURCES]),
            str,
        )
        timed("control: source DB vs that", lambda: compare_np(src, theirs, exported), Tally.summary)
    timed(
        "our DB np_upstream_ours (migrate)",
        lambda: (recreate(OURS, creds()["app_user"]), manage("migrate", "-v0"))[1][0],
        lambda rc: f"rc {rc}",
    )
    ours = connect(OURS)
    timed(
        "our import_config",
        lambda: manage("import_config", "--base", str(base)),
        lambda r: (
            f"rc {r[0]}: "
            + ", ".join(f"{n} {k}" for k, n in re.findall(r"config/(\w+)\.jsonl: (\d+) rows", r[1]))
        ),
    )
    import_args = ("import_source", MODEL, *SOURCES, "--base", str(base))
    timed(
        "our import, killed after activations/batch-0",
        lambda: manage(*import_args, kill_after="activations/batch-0"),
        lambda r: f"rc {r[0]}; {live_counts(ours)}",
    )
    ok &= check(_visitor_sees([404, 404, 404, 404]))
    rc, out = timed(
        "our import (resumed, whole)",
        lambda: manage(*import_args),
        lambda r: f"rc {r[0]}: {r[1].count(' rows (')} steps; {live_counts(ours)}",
    )
    ok &= check(rc == 0)
    if rc:
        print(out)
    tally = timed(
        "compare: source DB vs ours",
        lambda: compare_ours(src, ours, exported),
        lambda t: (
            t.summary()
            + f"; NULL held as ''/[]/{{}} in NOT NULL columns of ours: {sorted(set(NULL_AS_EMPTY))}"
        ),
    )
    ok &= check(not tally.bad)
    if have_node:
        tally = timed(
            "compare: what their import stored from their export vs ours",
            lambda: _stored_all(theirs, ours),
            lambda t: (
                t.summary()
                + f" (all columns but {', '.join(NOT_EXPORTED_NULL)}); NULL there, ''/[] in a NOT NULL column"
                f" of ours: {sorted(set(NULL_AS_EMPTY))}"
            ),
        )
        ok &= check(not tally.bad)
    before = fingerprint(ours)
    rc, out = timed(
        "our import again",
        lambda: manage(*import_args),
        lambda r: (
            f"rc {r[0]}: " + " ".join(ln.split("] ", 1)[-1] for ln in r[1].splitlines() if "unchanged" in ln)
        ),
    )
    same_rows = fingerprint(ours) == before
    step(
        "  -> second import a no-op",
        0.0,
        f"every live row, checkpoint and kept record identical: {same_rows}",
    )
    ok &= check(same_rows and rc == 0)
    timed(
        "our import --force, killed after features/batch-1",
        lambda: manage(*import_args, "--force", kill_after="features/batch-1"),
        lambda r: f"rc {r[0]}; {live_counts(ours)}",
    )
    ok &= check(_visitor_sees([200, 404, 200, 404]))
    same_rows = fingerprint(ours) == before
    tally = timed(
        "compare after that kill: source DB vs ours",
        lambda: compare_ours(src, ours, exported),
        lambda t: f"live rows unchanged: {same_rows}; {t.summary()}",
    )
    ok &= check(same_rows and not tally.bad)
    timed("change the source database", lambda: change_upstream(src), str)
    base = timed(
        "their export-data.py again", lambda: run_exporter(checkout, src), lambda b: _source_files(b, SOURCE2)
    )
    rc, out = timed(
        "our import of the new export",
        lambda: manage(*import_args),
        lambda r: (
            f"rc {r[0]}: files loaded: "
            + ", ".join(m for m in re.findall(r"(\S+/\S+\.jsonl\.gz): \d+ rows", r[1]) if SOURCE2 in m)
            + f" (and {len(re.findall(r'jsonl.gz: ', r[1]))} in all)"
        ),
    )
    ok &= check(rc == 0)
    tally = timed(
        "compare: changed source DB vs ours", lambda: compare_ours(src, ours, exported), Tally.summary
    )
    ok &= check(not tally.bad)
    out_dir = WORK / "our_export"
    shutil.rmtree(out_dir, ignore_errors=True)
    for source in SOURCES:
        rc, _ = timed(
            f"our export_source {source}",
            lambda s=source: manage("export_source", MODEL, s, "--out", str(out_dir)),
            lambda r: f"rc {r[0]}: " + (r[1].strip().splitlines() or [""])[-1][-160:],
        )
        ok &= check(rc == 0)
    if have_node:
        dst = new_np_db(checkout, DST)
        errors = timed(
            "their import route on our export (real Prisma)",
            lambda: route_errors([np_route(checkout, DST, out_dir, s) for s in SOURCES]),
            str,
        )
        ok &= check("ROUTE ERROR" not in errors and "Error importing" not in errors and "exit" not in errors)
        tally = timed(
            "compare: source DB vs Neuronpedia DB from our export",
            lambda: compare_np(src, dst, exported),
            Tally.summary,
        )
        ok &= check(not tally.bad)
    dst_sql = new_np_db(checkout, DST_SQL)
    swallowed = timed(
        "their import SQL, translated to psycopg, on our export",
        lambda: [e for s in SOURCES for e in np_import(checkout, dst_sql, out_dir, s)],
        lambda e: "no errors" if not e else f"errors the route swallows: {e}",
    )
    ok &= check(not swallowed)
    tally = timed("compare: source DB vs that", lambda: compare_np(src, dst_sql, exported), Tally.summary)
    ok &= check(not tally.bad)
    conv = timed(
        "their convert-saedashboard-to-neuronpedia-export.py",
        lambda: run_converter(checkout),
        lambda b: _source_files(b, CONV_SOURCE, CONV_MODEL),
    )
    rc, out = timed(
        "our import of the converter's output",
        lambda: manage("import_source", CONV_MODEL, CONV_SOURCE, "--base", str(conv)),
        lambda r: f"rc {r[0]}: " + " ".join(ln.strip() for ln in r[1].splitlines() if "expected" in ln),
    )
    ok &= check(rc == 0)
    if rc:
        print(out)
    if have_node:
        conv_db = new_np_db(checkout, DST_CONV)
        errors = timed(
            "control: their import route on the converter's output",
            lambda: route_errors(
                [np_route(checkout, DST_CONV, conv, CONV_SOURCE, model=CONV_MODEL, config=base / "config")]
            ),
            str,
        )
        ok &= check("ROUTE ERROR" not in errors and "exit" not in errors)
        tally = timed(
            "compare: what their import stored vs ours",
            lambda: compare_stored(conv_db, ours, CONV_MODEL, CONV_SOURCE),
            Tally.summary,
        )
        ok &= check(not tally.bad)
    tally = timed(
        "compare: converter files vs ours",
        lambda: compare_files(conv, ours),
        lambda t: t.summary() + f"; keys not kept: {sorted(NOT_KEPT)}",
    )
    return check(not tally.bad) and ok


if __name__ == "__main__":
    raise SystemExit(main())
