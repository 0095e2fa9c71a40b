"""Hostile SQL for the read-only `sql` source: writes, executable comments, server-file and
server-side functions, locking clauses and stacked statements are refused before they reach the
server; the exact MariaDB executable-comment attack writes no file. Guard cases run in one child
process with a time and memory limit; the server cases against real PostgreSQL and MariaDB."""
from __future__ import annotations

import json
import os
import sqlite3
import uuid
from pathlib import Path

import pytest


REQUIRE = os.environ.get("CURATE_REQUIRE_SERVICES") == "1"

# (query, sqlglot dialect, expected words in the refusal)
REFUSED = [
    ("select body from t /*! into outfile '/tmp/x.txt' */", "mysql", "executable comments"),
    ("select body from t /*M! into outfile '/tmp/x.txt' */", "mysql", "executable comments"),
    ("select body from t /*!50000 union select load_file('/etc/passwd') */", "mysql", "executable comments"),
    ("SELECT/**/body/**/FROM/**/t/*!INTO*//*!OUTFILE*/'/tmp/y'", "mysql", "executable comments"),
    ("select * from t into outfile '/tmp/x'", "mysql", "INTO OUTFILE"),
    ("select * from t into dumpfile '/tmp/x'", "mysql", "DUMPFILE"),
    ("select body into outfile '/tmp/x' from t", "mysql", "INTO OUTFILE"),
    ("select 1 into @x", "mysql", "INTO is refused"),
    ("select * into newt from t", "postgres", "INTO is refused"),
    ("copy t to '/tmp/x'", "postgres", "COPY"),
    ("copy (select 1) to program 'id'", "postgres", "refused"),
    ("with x as (delete from t returning *) select * from x", "postgres", "DELETE"),
    ("select 1; drop table t", "postgres", "one statement"),
    ("begin; drop table t", "postgres", "one statement"),
    ("select lo_export(1, '/tmp/x')", "postgres", "lo_export"),
    ("select pg_catalog.lo_import('/etc/passwd')", "postgres", "lo_import"),
    ("select dblink_exec('dbname=x', 'drop table t')", "postgres", "dblink_exec"),
    ("select pg_read_file('/etc/passwd')", "postgres", "pg_read_file"),
    ("select set_config('default_transaction_read_only', 'off', false)", "postgres", "set_config"),
    ("select pg_sleep(3600)", "postgres", "pg_sleep"),
    ("select query_to_xml('select lo_import(''/etc/passwd'')', true, true, '')", "postgres", "query_to_xml"),
    ("select * from dblink('dbname=x', 'select 1') as t(a int)", "postgres", "dblink"),
    ("select pg_catalog.\"lo_export\"(1, '/tmp/x')", "postgres", "lo_export"),
    ("select * from t where x in (select lo_import('/etc/passwd'))", "postgres", "lo_import"),
    ("select pg_create_physical_replication_slot('x')", "postgres", "pg_create_physical_replication_slot"),
    ("select * from t for update", "postgres", "locking"),
    ("select * from t lock in share mode", "mysql", "locking"),
    ("select load_file('/etc/passwd')", "mysql", "load_file"),
    ("select sys_exec('id')", "mysql", "sys_exec"),
    ("select benchmark(100000000, md5('a'))", "mysql", "benchmark"),
    ("SELECT SLEEP(3600)", "mysql", "sleep"),
    ("select load_extension('/tmp/evil.so')", "sqlite", "load_extension"),
    ("set transaction read write", "postgres", "read-only"),
    ("call p()", "postgres", "CALL"),
    ("explain analyze delete from t", "postgres", "EXPLAIN"),
    ("select body --body into outfile '/tmp/y' from t", "mysql", "OUTFILE"),   # MySQL: not a comment
    ("  ;  ", "postgres", "empty statement"),
    # a string, not a comment, for every server but a conservative raw scan: refused, said why
    ("select 'drop table x; /*! not run */' as s from t", "sqlite", "executable comments"),
]
ALLOWED = [
    ("select body from t where tag = :t", "postgres"),
    ("with a as (select 1 as x) select x from a union all select 2", "postgres"),
    ("values (1)", "postgres"),
    ("(select 1)", "sqlite"),
    ("select count(*) from t -- into outfile 'x'\n", "postgres"),
    ("select `insert` from t", "mysql"),
    ("select @@session.tx_read_only as ro", "mysql"),
    ("select $$ ; drop table t $$ as s", "postgres"),
    ("select x from generate_series(1, 10) as x", "postgres"),
    ("select pg_catalog.upper(body), lower(body) from t", "postgres"),
]
_GUARD_CHILD = """
from curate.connectors.sql_guard import check_read_only
result = []
for q, d in json.loads(CASES):
    try:
        check_read_only(q, d)
        result.append(None)
    except Exception as e:
        result.append([type(e).__name__, str(e)])
"""
_VERDICTS: dict = {}


@pytest.fixture
def verdicts(isolated) -> dict:
    """Every guard case checked once, in one child process (20 s, 1 GiB): query -> None or [type, msg]."""
    if not _VERDICTS:
        cases = [(q, d) for q, d, _ in REFUSED] + list(ALLOWED)
        res = isolated(f"CASES = {json.dumps(json.dumps(cases))}\n" + _GUARD_CHILD, timeout=20, mem_mb=1024).ok()
        _VERDICTS.update(zip([q for q, _ in cases], res.result))
    return _VERDICTS


@pytest.mark.parametrize("query,dialect,words", REFUSED, ids=[f"refused-{i}" for i in range(len(REFUSED))])
def test_refused(verdicts, query, dialect, words):
    got = verdicts[query]
    assert got is not None, f"{query!r} passed the read-only guard"
    kind, msg = got
    assert kind == "DataError" and words.lower() in msg.lower(), msg


@pytest.mark.parametrize("query,dialect", ALLOWED, ids=[f"allowed-{i}" for i in range(len(ALLOWED))])
def test_allowed(verdicts, query, dialect):
    assert verdicts[query] is None, verdicts[query]


def test_sqlite_read_only_guard_and_connection(isolated, tmp_path):
    db = tmp_path / "t.sqlite"
    con = sqlite3.connect(db)
    con.execute("create table t (body text)")
    con.execute("insert into t values ('a')")
    con.commit()
    con.close()
    kind, msg = _read(isolated, str(db), "select load_extension('/nonexistent.so')")
    assert kind == "DataError" and "load_extension" in msg, msg
    assert _read(isolated, str(db), "select body from t") == ["ok", [{"body": "a"}]]


# ------------------------------------------------------------------------------ real servers
def _url(var: str) -> str:
    url = os.environ.get(var)
    if not url:
        if REQUIRE:
            pytest.fail(f"{var} is not set but CURATE_REQUIRE_SERVICES=1")
        pytest.skip(f"{var} is not set (a database server URL)")
    return url


def _exec(url: str, *stmts: str) -> None:
    import sqlalchemy as sa
    eng = sa.create_engine(url)
    try:
        with eng.begin() as c:
            for s in stmts:
                c.exec_driver_sql(s)
    finally:
        eng.dispose()


def _scalar(url: str, query: str):
    import sqlalchemy as sa
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return c.exec_driver_sql(query).scalar()
    finally:
        eng.dispose()


READ_CHILD = """
from curate.connectors.sql import SqlSource
from curate.errors import CurateError
try:
    rows = [r for b in SqlSource(url=URL, query=QUERY, connect_timeout=5, **KW).read()
            for r in b.rows.drop("source").to_dicts()]
    result = ["ok", rows]
except CurateError as e:
    result = [type(e).__name__, str(e)]
except Exception as e:        # the unguarded attack: the driver's own error, still a clean exit
    result = ["driver:" + type(e).__name__, str(e)[:300]]
"""


def _read(isolated, url: str, query: str, **kw) -> list:
    """Run the sql source in a child process (30 s, 1.5 GiB): ["ok", rows] or [error type, message]."""
    code = f"URL = {url!r}\nQUERY = {query!r}\nKW = {kw!r}\n" + READ_CHILD
    return isolated(code, timeout=30).ok().result


def test_mariadb_executable_comment_writes_no_file(isolated):
    url = _url("CURATE_TEST_MARIADB_URL")
    table = "hostile_" + uuid.uuid4().hex[:8]
    target = Path(f"/tmp/curate-hostile-{uuid.uuid4().hex[:8]}.txt")
    _exec(url, f"create table {table} (body text)", f"insert into {table} values ('secret row')")
    try:
        attack = f"select body from {table} /*! into outfile '{target}' */"
        kind, msg = _read(isolated, url, attack)
        assert kind == "DataError" and "executable comments" in msg, msg
        assert not target.exists(), "the guarded source let the server write a file"
        # the same text without the guard: the server does write the file (the attack is real)
        _read(isolated, url, attack, read_only=False)
        if _scalar(url, "select coalesce(@@secure_file_priv, '')") == "":
            assert target.exists(), "MariaDB may write anywhere here, yet the unguarded attack did not"
        # with the guard, on the same server, a plain read works
        assert _read(isolated, url, f"select body from {table}") == ["ok", [{"body": "secret row"}]]
    finally:
        _exec(url, f"drop table if exists {table}")
        target.unlink(missing_ok=True)


@pytest.mark.parametrize("query", ["copy {t} to '/tmp/{f}'", "select lo_export(1, '/tmp/{f}')",
                                   "select * from {t} for update",
                                   "select pg_read_file('/etc/passwd') from {t}"])
def test_postgres_server_writes_refused(isolated, query):
    url = _url("CURATE_TEST_POSTGRES_URL")
    table = "hostile_" + uuid.uuid4().hex[:8]
    fname = f"curate-hostile-{uuid.uuid4().hex[:8]}.txt"
    _exec(url, f"create table {table} (body text)", f"insert into {table} values ('x')")
    try:
        kind, msg = _read(isolated, url, query.format(t=table, f=fname))
        assert kind == "DataError" and "refused" in msg, msg
        assert not Path("/tmp", fname).exists()
    finally:
        _exec(url, f"drop table if exists {table}")
