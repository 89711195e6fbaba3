"""Issue 15: the embedded PostgreSQL no longer trusts every local process as superuser. A fresh data folder
gets generated passwords (kept 0600 in the data folder) and a non-superuser role for the app; a folder
made by an older version (trust, app = superuser) is converted by the next `up`. Each test runs its own
embedded server in a temporary folder on a free port (not the shared one the suite uses)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from neuronpedia import devservices
from neuronpedia.lib import env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pg_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """NP_DATA_DIR in a folder the unprivileged `nobody` can traverse (PostgreSQL runs as it under root)."""
    home = Path(tempfile.mkdtemp(prefix="np-pg-", dir="/tmp"))
    home.chmod(0o755)
    monkeypatch.setenv("NP_DATA_DIR", str(home))
    monkeypatch.setenv("NP_EMBEDDED_PG_PORT", str(_free_port()))
    monkeypatch.setenv("NP_EMBEDDED_PG_SHARED_BUFFERS", "32MB")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    try:
        yield home
    finally:
        devservices.stop_postgres()
        shutil.rmtree(home, ignore_errors=True)


def _connect(user: str, password: str | None, dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=devservices.embedded_pg_port(), dbname=dbname, user=user,
                           password=password, autocommit=True, connect_timeout=10)


def _assert_secured(home: Path) -> dict[str, str]:
    creds = devservices.load_credentials()
    assert creds is not None
    path = devservices.credentials_file()
    assert path.parent == home
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(creds["app_password"]) >= 24
    assert creds["app_password"] != creds["superuser_password"]
    # the URL the settings use is the app's role, with its password
    url = env.parse_database_url(devservices.database_url())
    assert (url.user, url.password, url.name) == (devservices.APP_ROLE, creds["app_password"], "neuronpedia")

    with _connect(url.user, url.password, url.name) as conn:
        role = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                            "WHERE rolname = current_user").fetchone()
        assert role == (False, True, False)
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE intruder SUPERUSER")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE EXTENSION IF NOT EXISTS file_fdw")  # reads server files: superuser only
        # granted for the importer's fast path (transfer/importer/loader.py)
        assert conn.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')").fetchone() \
            == (True,)
    # no password, a wrong one, or the superuser without its password: refused, over TCP and the socket
    for user, password in [(devservices.APP_ROLE, None), (devservices.APP_ROLE, "wrong"),
                           ("postgres", None), ("postgres", creds["app_password"])]:
        with pytest.raises(psycopg.OperationalError, match="password"):
            _connect(user, password)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=str(home / "postgres"), port=devservices.embedded_pg_port(), dbname="postgres",
                        user="postgres", connect_timeout=10)
    # the app can make a database (as the test runner does) and it has pgvector without a superuser
    with _connect(url.user, url.password) as conn:
        conn.execute('CREATE DATABASE "np_app_made"')
    with _connect(url.user, url.password, "np_app_made") as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")  # already there (from template1)
        conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, v vector(3))")
        conn.execute("INSERT INTO t (v) VALUES ('[1,2,3]')")
        assert conn.execute("SELECT v <-> '[1,2,4]' FROM t").fetchone() == (1.0,)
    with _connect(url.user, url.password) as conn:
        conn.execute('DROP DATABASE "np_app_made"')
    return creds


def test_a_fresh_data_folder_gets_passwords_and_a_non_superuser_app_role(pg_home: Path) -> None:
    devservices.start_postgres(secure=True)
    creds = _assert_secured(pg_home)
    # a second `up` (server running) changes nothing and keeps the same passwords
    devservices.start_postgres(secure=True)
    assert devservices.load_credentials() == creds
    # a restart (server stopped, then started by any process) still needs passwords
    devservices.stop_postgres()
    devservices.start_postgres()
    assert devservices.load_credentials() == creds
    _assert_secured(pg_home)


def _run_as_db_user(cmd: list[str]) -> None:
    subprocess.run(devservices._as_db_user(cmd), check=True, stdout=subprocess.DEVNULL)


def test_an_older_trusting_data_folder_is_converted_on_the_next_up(pg_home: Path) -> None:
    # what the previous version made: initdb --auth=trust, the app connecting as superuser `postgres`
    pgdata = pg_home / "postgres"
    devservices._prepare_pg_dir(pgdata)
    _run_as_db_user([devservices._pg_bin("initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                     "-E", "UTF8", "--no-locale"])
    devservices._prepare_pg_dir(pgdata)
    port = devservices.embedded_pg_port()
    _run_as_db_user([devservices._pg_bin("pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"),
                     "-w", "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {pgdata} "
                                 "-c shared_buffers=32MB", "start"])
    assert devservices.load_credentials() is None
    assert env.parse_database_url(devservices.database_url()).user == "postgres"  # until `up`
    devservices.start_postgres()  # any process's preflight: leaves an old folder as it is
    with _connect("postgres", None) as conn:
        conn.execute('CREATE DATABASE "test_np_old"')
    for dbname in ("neuronpedia", "test_np_old"):
        with _connect("postgres", None, dbname) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute("CREATE TABLE features_feature (id bigserial PRIMARY KEY, "
                         "v vector(3), n int GENERATED ALWAYS AS IDENTITY)")
            conn.execute("CREATE VIEW feature_ids AS SELECT id FROM features_feature")
            conn.execute("INSERT INTO features_feature (v) VALUES ('[1,2,3]')")

    # another test run is busy in its database: `up` does not wait for it (the table stays the superuser's)
    busy = psycopg.connect(host="127.0.0.1", port=port, dbname="test_np_old", user="postgres")
    busy.execute("LOCK TABLE features_feature IN ACCESS SHARE MODE")
    started = time.monotonic()
    devservices.start_postgres(secure=True)  # `bin/np up`
    assert time.monotonic() - started < 20
    busy.close()

    creds = _assert_secured(pg_home)
    app, password = creds["app_user"], creds["app_password"]
    with _connect(app, password, "neuronpedia") as conn:
        owners = dict(conn.execute(
            "SELECT c.relname, r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
            "AND c.relkind IN ('r', 'v', 'S')").fetchall())
        assert owners == {"features_feature": app, "feature_ids": app, "features_feature_id_seq": app,
                          "features_feature_n_seq": app}
        # what migrations do: alter, insert (sequences), drop
        conn.execute("ALTER TABLE features_feature ADD COLUMN label text")
        conn.execute("INSERT INTO features_feature (v, label) VALUES ('[0,0,1]', 'x')")
        assert conn.execute("SELECT count(*) FROM feature_ids").fetchone() == (2,)
    with _connect(app, password) as conn:
        # an older test database now belongs to the app: the test runner can drop and re-create it
        conn.execute('DROP DATABASE "test_np_old"')
        conn.execute('CREATE DATABASE "test_np_old"')
    assert (pg_home / "postgres" / "pg_hba.conf").read_text() == devservices.HBA
    assert os.environ["NP_DATA_DIR"] == str(pg_home)
