"""Neuronpedia's import: its route run under Node with the real Prisma, and its SQL translated to psycopg."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from upstream.common import (
    DEFAULT_CREATOR,
    HOST,
    MODEL,
    PORT,
    WORK,
    _jsonl,
    apply_migrations,
    connect,
    creds,
)

# ---------------------------------------------------------------- Neuronpedia's import (route.ts + import.ts)


class PrismaValidationError(Exception):
    pass


def prisma_schema(checkout: Path) -> dict[str, dict[str, tuple[str, bool, bool, bool]]]:
    """model -> field -> (type, optional, has a default (@default/@updatedAt) or is a list, is a relation)."""
    text = (checkout / "apps/webapp/prisma/schema.prisma").read_text()
    models = dict(re.findall(r"^model (\w+) \{(.*?)^\}", text, re.S | re.M))
    enums = set(re.findall(r"^enum (\w+) \{", text, re.M))
    out: dict[str, dict[str, tuple[str, bool, bool, bool]]] = {}
    for name, body in models.items():
        fields = {}
        for line in body.splitlines():
            m = re.match(r"\s*(\w+)\s+(Unsupported\([^)]*\)|\w+)(\[\]|\?)?\s*(.*)", line)
            if not m or line.strip().startswith(("//", "@@")):
                continue
            field, type_, mod, attrs = m.groups()
            relation = type_ in models
            fields[field] = (
                type_ if type_ not in enums else "enum",
                mod == "?",
                "@default" in attrs or "@updatedAt" in attrs or mod == "[]",
                relation,
            )
        out[name] = fields
    return out


def prisma_write(
    conn: psycopg.Connection[Any],
    schema: dict[str, Any],
    table: str,
    data: dict[str, Any],
    upsert_key: tuple[str, ...] = (),
) -> None:
    """prisma.<table>.create({data}) / upsert({where, update: data, create: data}), validated as Prisma
    does."""
    fields = schema[table]
    for key, value in data.items():
        if key not in fields or fields[key][3]:
            raise PrismaValidationError(f"{table}.create: Unknown argument `{key}`")
        type_, optional, _, _ = fields[key]
        if value is None and not optional:
            raise PrismaValidationError(f"{table}.create: Argument `{key}` must not be null")
        if type_ == "DateTime" and value is not None:  # s3.ts parseLine makes Dates of these two first
            text = str(value).replace("Z", "+00:00")
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise PrismaValidationError(f"{table}.create: `{key}` is not ISO-8601: {value!r}") from None
            if parsed.tzinfo is None and key not in ("createdAt", "updatedAt"):
                raise PrismaValidationError(
                    f"{table}.create: `{key}`: premature end of input. Expected ISO-8601 DateTime: {value!r}"
                )
    for field, (_, optional, default, relation) in fields.items():
        if not (optional or default or relation) and field not in data:
            raise PrismaValidationError(f"{table}.create: Argument `{field}` is missing")
    row = dict(data)
    for field, (type_, _, _, _) in fields.items():  # @updatedAt without a DB default: Prisma sets it
        if field == "updatedAt" and field not in row and type_ == "DateTime":
            row[field] = datetime.now(UTC).isoformat()
    cols = ", ".join(f'"{k}"' for k in row)
    conflict = ""
    if upsert_key:
        sets = ", ".join(f'"{k}" = EXCLUDED."{k}"' for k in row if k not in upsert_key)
        sets = sets or f'"{upsert_key[0]}" = EXCLUDED."{upsert_key[0]}"'
        conflict = (
            f" ON CONFLICT ({', '.join(chr(34) + k + chr(34) for k in upsert_key)}) DO UPDATE SET {sets}"
        )
    conn.execute(
        f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM jsonb_populate_record(NULL::"{table}",'
        f" %s::jsonb){conflict}",
        [json.dumps(row)],
    )


class ImportJsonl:
    """importJsonlString(tableName, jsonlData) of lib/db/import.ts: its SQL, read from the file."""

    def __init__(self, checkout: Path) -> None:
        text = (checkout / "apps/webapp/lib/db/import.ts").read_text()
        self.work_mem = re.search(r"const WORK_MEM = '([^']+)'", text).group(1)  # type: ignore[union-attr]
        column_query = re.search(r"const columnQuery = `(.*?)`;", text, re.S).group(1)  # type: ignore[union-attr]
        self.column_query = column_query.replace("$1", "%s").replace("$2", "%s")
        self.insert = re.search(r"const query = `(.*?)`;", text, re.S).group(1)  # type: ignore[union-attr]
        self.chunk = int(re.search(r"const chunkSize = (\d+);", text).group(1))  # type: ignore[union-attr]

    def __call__(self, conn: psycopg.Connection[Any], table: str, jsonl: str) -> None:
        jsonl = jsonl.replace("\\u0000", " ")
        if table == "Activation":
            lines = []
            for line in jsonl.strip().split("\n"):
                if not line.strip():
                    continue
                parsed = json.loads(line)
                z = parsed.get("zIndices")
                if isinstance(z, list):
                    if (
                        len(z) > 0
                        and isinstance(z[0], list)
                        and all(isinstance(v, int | float) for v in z[0])
                    ):
                        parsed["zKIndices"] = z[0]
                    if (
                        len(z) > 1
                        and isinstance(z[1], list)
                        and all(isinstance(v, int | float) for v in z[1])
                    ):
                        parsed["zQIndices"] = z[1]
                lines.append(json.dumps(parsed, separators=(",", ":"), ensure_ascii=False))
            jsonl = "\n".join(lines)
        conn.execute(f"SET work_mem = '{self.work_mem}'")
        first = jsonl.strip().split("\n")[0]
        columns = conn.execute(self.column_query, [table, list(json.loads(first))]).fetchall()
        column_defs = ", ".join(f'"{name}" {kind}' for name, kind in columns)
        column_list = ", ".join(f'"{name}"' for name, _ in columns)
        query = (
            self.insert.replace("${tableName}", table)
            .replace("${columnList}", column_list)
            .replace("${columnDefs}", column_defs)
            .replace("$1", "%s")
        )
        lines = jsonl.strip().split("\n")
        for i in range(0, len(lines), self.chunk):
            conn.execute(query, ["[" + ",".join(lines[i : i + self.chunk]) + "]"])


def np_import(checkout: Path, conn: psycopg.Connection[Any], base: Path, source: str) -> list[str]:
    """GET /api/admin/import?modelId&sourceId (explanations=true); returns the errors it logs and swallows."""
    schema, import_jsonl, swallowed = prisma_schema(checkout), ImportJsonl(checkout), []
    for filename, table in (
        ("explanation_model_type", "ExplanationModelType"),
        ("explanation_type", "ExplanationType"),
        ("explanation_score_model", "ExplanationScoreModel"),
        ("explanation_score_type", "ExplanationScoreType"),
        ("eval_type", "EvalType"),
    ):
        for line in _jsonl(base / "config" / f"{filename}.jsonl"):
            prisma_write(conn, schema, table, line, upsert_key=("name",))
    folder = base / MODEL / source
    try:  # release: errors logged, not raised
        for line in _jsonl(folder / "release.jsonl"):
            if not conn.execute('SELECT 1 FROM "SourceRelease" WHERE name = %s', [line["name"]]).fetchone():
                prisma_write(conn, schema, "SourceRelease", line)
    except Exception as exc:  # noqa: BLE001
        swallowed.append(f"release: {exc}")
    for line in _jsonl(folder / "model.jsonl"):
        if not conn.execute('SELECT 1 FROM "Model" WHERE id = %s', [line["id"]]).fetchone():
            prisma_write(conn, schema, "Model", line)
    for line in _jsonl(folder / "sourceset.jsonl"):
        if not conn.execute(
            'SELECT 1 FROM "SourceSet" WHERE "modelId" = %s AND name = %s', [MODEL, line["name"]]
        ).fetchone():
            prisma_write(conn, schema, "SourceSet", {**line, "urls": line.get("urls") or []})
    for line in _jsonl(folder / "source.jsonl"):
        if not conn.execute(
            'SELECT 1 FROM "Source" WHERE "modelId" = %s AND id = %s', [MODEL, line["id"]]
        ).fetchone():
            data = dict(line)
            if not data.get("inferenceHosts"):
                data.pop("inferenceHosts", None)
            prisma_write(conn, schema, "Source", data)
    for filename, table, key in (
        ("inference_hosts", "InferenceHostSource", ("id",)),
        (
            "inference_hosts_on_source",
            "InferenceHostSourceOnSource",
            ("sourceId", "sourceModelId", "inferenceHostId"),
        ),
    ):
        try:
            for line in _jsonl(folder / f"{filename}.jsonl"):
                prisma_write(conn, schema, table, line, upsert_key=key)
        except Exception as exc:  # noqa: BLE001
            swallowed.append(f"{filename}: {exc}")
    for kind, table in (("features", "Neuron"), ("activations", "Activation")):
        for path in sorted((folder / kind).glob("*.jsonl.gz")):  # S3 lists keys in lexical order
            import_jsonl(conn, table, gzip.decompress(path.read_bytes()).decode())
    lines: list[str] = []
    for path in sorted((folder / "explanations").glob("*.jsonl.gz")):
        lines += [ln for ln in gzip.decompress(path.read_bytes()).decode().strip().split("\n") if ln.strip()]
        while len(lines) >= 10000:
            import_jsonl(conn, "Explanation", "\n".join(lines[:10000]))
            lines = lines[10000:]
    if lines:
        import_jsonl(conn, "Explanation", "\n".join(lines))
    return swallowed


# ---------------------------------------------------------------- their route under Node, real Prisma

NODE_DIR = Path("/tmp/np_prisma")
NPM_PACKAGES = (
    "prisma@5.22.0",
    "@prisma/client@5.22.0",
    "@prisma/adapter-pg@5.22.0",
    "pg@8",
    "typescript@5",
    "node-gzip@1",
)
WASM_LOADER = """// written by bench/upstream_roundtrip.py: compile Prisma's query engine wasm from disk
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const dir = path.dirname(fileURLToPath(import.meta.url));
const wasm = fs.readFileSync(path.join(dir, 'query_engine_bg.wasm'));
export default Promise.resolve({ default: new WebAssembly.Module(wasm) });
"""
DRIVER = r"""// Runs Neuronpedia's GET /api/admin/import (apps/webapp/app/api/admin/import/route.ts, which
// calls
// lib/db/import.ts and lib/utils/s3.ts) unchanged, under Node, with: the real Prisma Client 5.22 (its wasm
// query engine + @prisma/adapter-pg) for `prisma`, the real `pg` for importJsonlString, and stubs only for
// the S3 SDK (a local folder, keys listed in S3's lexical order), next/server, the auth wrapper and env.
const Module = require('module');
const path = require('path');
const fs = require('fs');
const NM = process.env.NP_NODE_MODULES;
const WEBAPP = process.env.NP_WEBAPP;
const ROOT_S3 = process.env.NP_LOCAL_S3;
const ts = require(path.join(NM, 'typescript'));
const { PrismaClient } = require(path.join(NM, '@prisma/client/wasm'));
const prismaModule = require(path.join(NM, '@prisma/client/wasm'));
const { PrismaPg } = require(path.join(NM, '@prisma/adapter-pg'));
const { Pool } = require(path.join(NM, 'pg'));
const pool = new Pool({ connectionString: process.env.POSTGRES_URL_NON_POOLING });
const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return fs.statSync(p).isDirectory() ? walk(p) : [p];
  });
}
class GetObjectCommand { constructor(input) { this.input = input; } }
class ListObjectsV2Command { constructor(input) { this.input = input; } }
class S3 {
  async send(cmd) {
    if (cmd instanceof GetObjectCommand) {
      const file = path.join(ROOT_S3, cmd.input.Key);
      if (!fs.existsSync(file)) {
        const e = new Error(`NoSuchKey: ${cmd.input.Key}`);
        e.name = 'NoSuchKey';
        throw e;
      }
      const data = fs.readFileSync(file);
      return { Body: { transformToByteArray: async () => new Uint8Array(data),
                       transformToString: async () => data.toString('utf8') } };
    }
    const keys = walk(ROOT_S3).map((p) => path.relative(ROOT_S3, p))
      .filter((k) => k.startsWith(cmd.input.Prefix)).sort();
    return { Contents: keys.slice(0, 1000).map((Key) => ({ Key })), IsTruncated: keys.length > 1000 };
  }
}
class NextResponse {
  constructor(body, init) { this.body = body; this.init = init; }
  static json(obj, init) {
    const r = new NextResponse(JSON.stringify(obj), init);
    r.jsonBody = obj;
    return r;
  }
}
const stubs = {
  '@aws-sdk/client-s3': { S3, GetObjectCommand, ListObjectsV2Command },
  'next/server': { NextResponse },
  '@/lib/with-user': { withOptionalUser: (fn) => fn, getAuthedAdminUser: async () => true },
  '@/lib/env': { IS_LOCALHOST: true, NODE_ENV: 'development' },
  '@/lib/db': { prisma },
  '@prisma/client': prismaModule,
};
const originalRequire = Module.prototype.require;
Module.prototype.require = function (id) {
  if (Object.prototype.hasOwnProperty.call(stubs, id)) return stubs[id];
  if (id.startsWith('@/')) return originalRequire.call(this, path.join(WEBAPP, id.slice(2)));
  if (['pg', 'node-gzip'].includes(id)) return originalRequire.call(this, path.join(NM, id));
  return originalRequire.call(this, id);
};
require.extensions['.ts'] = function (module, filename) {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022,
                       esModuleInterop: true },
  });
  module._compile(out.outputText, filename);
};

(async () => {
  const { GET } = require(path.join(WEBAPP, 'app/api/admin/import/route.ts'));
  const url = `http://localhost:3000/api/admin/import?modelId=${process.env.NP_MODEL}&sourceId=${process.env.NP_SOURCE}`;
  const response = await GET({ url });
  if (!(response.body instanceof ReadableStream)) { console.log('RESPONSE', response.body); process.exit(2); }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) { const { value, done } = await reader.read(); if (done) break; text += decoder.decode(value); }
  const failed = text.includes('event: error');
  console.log(failed ? `ROUTE ERROR ${text.slice(text.indexOf('event: error'))}` : 'ROUTE COMPLETE');
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log('DRIVER ERROR', e); process.exit(3); });
"""


def ensure_node(checkout: Path) -> str:
    """npm packages of their webapp's versions (Prisma 5.22), and a Prisma Client generated from their
    schema.prisma (minus its zod generator and binaryTargets: no engine binaries can be downloaded here; the
    client runs on Prisma's wasm query engine through @prisma/adapter-pg, their schema's driverAdapters)."""
    client = NODE_DIR / "node_modules/.prisma/client"
    if not (NODE_DIR / "node_modules/typescript").exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "init", "-y"], cwd=NODE_DIR, check=True, capture_output=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", *NPM_PACKAGES],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            env={**os.environ, "PRISMA_SKIP_POSTINSTALL_GENERATE": "1"},
        )
    schema = (checkout / "apps/webapp/prisma/schema.prisma").read_text()
    schema = re.sub(r"generator zod \{.*?\n\}\n", "", schema, flags=re.S)
    schema = re.sub(r"\n\s*binaryTargets[^\n]*", "", schema)
    (NODE_DIR / "prisma").mkdir(exist_ok=True)
    (NODE_DIR / "prisma/schema.prisma").write_text(schema)
    (NODE_DIR / "dummy.so.node").touch()
    env = {
        **os.environ,
        "PRISMA_SCHEMA_ENGINE_BINARY": "/bin/true",
        "PRISMA_QUERY_ENGINE_LIBRARY": str(NODE_DIR / "dummy.so.node"),
        "PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING": "1",
        "POSTGRES_PRISMA_URL": "postgres://unused@localhost/x",
        "POSTGRES_URL_NON_POOLING": "postgres://unused@localhost/x",
    }
    subprocess.run(["npx", "prisma", "generate"], cwd=NODE_DIR, check=True, capture_output=True, env=env)
    for loader in ("wasm-worker-loader.mjs", "wasm-edge-light-loader.mjs"):
        (client / loader).write_text(WASM_LOADER)
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"node {version}, Prisma Client 5.22.0 (wasm engine) generated from their schema.prisma"


def np_route(
    checkout: Path, db: str, base: Path, source: str, *, model: str = MODEL, config: Path | None = None
) -> tuple[int, str]:
    """Their GET /api/admin/import for one source, under Node; returns (exit code, log). The bucket is
    `base` (DATASET_BASE_PATH "v1/"), or with `config`, that config folder and base's folder of `model`."""
    s3 = WORK / "s3"
    shutil.rmtree(s3, ignore_errors=True)
    s3.mkdir(parents=True)
    if config is None:
        (s3 / "v1").symlink_to(base)
    else:
        (s3 / "v1").mkdir()
        (s3 / "v1" / "config").symlink_to(config)
        (s3 / "v1" / model).symlink_to(base / model)
    (WORK / "np_import_driver.js").write_text(DRIVER)
    c = creds()
    env = {
        **os.environ,
        "NP_NODE_MODULES": str(NODE_DIR / "node_modules"),
        "NP_WEBAPP": str(checkout / "apps/webapp"),
        "NP_LOCAL_S3": str(s3),
        "NP_MODEL": model,
        "NP_SOURCE": source,
        "POSTGRES_URL_NON_POOLING": f"postgres://{c['superuser']}:{c['superuser_password']}@{HOST}:{PORT}/{db}",
    }
    proc = subprocess.run(
        ["nice", "-n", "10", "node", str(WORK / "np_import_driver.js")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    (WORK / f"np_route_{db}_{source}.log").write_text(log)
    return proc.returncode, log


def route_errors(results: list[tuple[int, str]]) -> str:
    """The route's outcome: its final event, and the errors it logs and swallows (release, hosts)."""
    notes = []
    for rc, log in results:
        notes += [ln[:300] for ln in log.splitlines() if ln.startswith(("ROUTE", "DRIVER"))]
        notes += [ln[:300] for ln in log.splitlines() if ln.startswith("Error importing")]
        if rc:
            notes.append(f"exit {rc}")
    return "; ".join(notes)


def new_np_db(checkout: Path, db: str) -> psycopg.Connection[Any]:
    """Their migrations, plus the user their exporter's DEFAULT_CREATOR_ID names (their seed's admin)."""
    apply_migrations(checkout, db)
    conn = connect(db)
    conn.execute(
        'INSERT INTO "User" (id, name, "emailUnsubscribeCode") VALUES (%s, %s, %s)',
        [DEFAULT_CREATOR, "neuronpedia", "u0"],
    )
    return conn
