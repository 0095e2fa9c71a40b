"""The sql source and sink against SQLite files and the real PostgreSQL / MariaDB servers."""
from __future__ import annotations

import json
import sqlite3

import polars as pl
import pytest
import sqlalchemy as sa

from curate.connectors.sql import SqlSource, check_read_only, safe_url
from curate.connectors.sql_sink import SqlSink
from curate import Pipeline
from curate.errors import CurateError, DataError


def read(**cfg):
    batches = list(SqlSource(**cfg).read())
    rows = [b.rows for b in batches if b.rows.height]
    rej = [b.rejected for b in batches if b.rejected.height]
    return (pl.concat(rows) if rows else pl.DataFrame(), pl.concat(rej) if rej else pl.DataFrame(),
            len(batches))


@pytest.fixture
def sqlite_db(tmp_path):
    path = tmp_path / "tickets.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE tickets (pk INTEGER PRIMARY KEY, body TEXT, tag TEXT, score REAL)")
    con.executemany("INSERT INTO tickets VALUES (?, ?, ?, ?)",
                    [(i, None if i % 10 == 0 else f"ticket body {i}", "billing" if i % 2 else "tech", i / 2)
                     for i in range(1, 51)])
    con.commit()
    con.close()
    return path


def fill(url: str, table: str, n: int, schema: str | None = None) -> None:
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        if schema:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        md = sa.MetaData()
        t = sa.Table(table, md, sa.Column("pk", sa.Integer, primary_key=True, autoincrement=False),
                     sa.Column("body", sa.Text), sa.Column("tag", sa.String(20)), schema=schema)
        t.create(conn)
        conn.execute(t.insert(), [{"pk": i, "body": None if i == 3 else f"row {i}", "tag": "a" if i % 2 else "b"}
                                  for i in range(1, n + 1)])
    eng.dispose()


def drop(url: str, table: str, schema: str | None = None) -> None:
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        if schema:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        else:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    eng.dispose()


# ------------------------------------------------------------------------------ SQLite
def test_table_streams_in_chunks_with_pk_locators_and_null_quarantine(sqlite_db):
    rows, rej, n_batches = read(url=str(sqlite_db), table="tickets", text="body", chunk_size=7)
    assert n_batches == 8                               # 50 rows / 7 per chunk
    assert rows.height == 45 and rej.height == 5
    assert rows["source"][:2].to_list() == ["sql:tickets:pk=1", "sql:tickets:pk=2"]
    r = rej.row(0, named=True)
    assert (r["source"], r["reason"], r["detail"]) == ("sql:tickets:pk=10", "null_value", "column body is NULL")
    assert rows.schema["score"] == pl.Float64


def test_columns_subset_and_pipeline_mapping(sqlite_db, tmp_path):
    res = Pipeline(name="sqlmap", sources=[{"sql": {"url": f"sqlite:///{sqlite_db}", "table": "tickets",
                                                    "columns": ["body", "tag"], "text": "body", "label": "tag"}}],
                   workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out")).run()
    df = res.data()
    assert set(df.columns) == {"id", "source", "origin", "text", "label"}
    assert df.height == 45 and res.rejects().height == 5
    assert df.filter(pl.col("source") == "sql:tickets:pk=1")["text"][0] == "ticket body 1"


def test_query_params_are_bound_never_formatted(sqlite_db):
    q = "SELECT pk, body FROM tickets WHERE tag = :tag AND pk <= :hi"
    rows, _, _ = read(url=str(sqlite_db), query=q, params={"tag": "billing", "hi": 5}, key=["pk"])
    assert rows["pk"].to_list() == [1, 3, 5]
    assert rows["source"][0] == "sql:query:" + __import__("hashlib").sha1(q.encode()).hexdigest()[:8] + ":pk=1"
    # an injection attempt is just an odd string value
    rows, _, _ = read(url=str(sqlite_db), query=q, params={"tag": "x' OR '1'='1", "hi": 99})
    assert rows.height == 0


@pytest.mark.parametrize("query,word", [
    ("DELETE FROM tickets", "DELETE"),
    ("drop table tickets", "DROP"),
    ("SELECT 1; DROP TABLE tickets", "one statement"),
    ("WITH x AS (DELETE FROM tickets RETURNING *) SELECT * FROM x", "DELETE"),
    ("SELECT * INTO backup FROM tickets", "INTO"),
    ("PRAGMA writable_schema = 1", "PRAGMA"),
    ("/* harmless */ UPDATE tickets SET body = 'x'", "UPDATE"),
])
def test_ddl_and_dml_refused(sqlite_db, query, word):
    with pytest.raises(DataError, match=word):
        read(url=str(sqlite_db), query=query)
    assert sqlite3.connect(sqlite_db).execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 50


def test_keywords_inside_strings_and_comments_are_fine():
    check_read_only("SELECT 'drop table x; delete' AS s -- update later\nFROM t")
    check_read_only('SELECT "insert" FROM t /* truncate */')


def test_sqlite_connection_is_query_only(sqlite_db):
    # the second guard behind the keyword check: SQLite's query_only flag on the connection
    rows, _, _ = read(url=str(sqlite_db), query="SELECT query_only AS ro FROM pragma_query_only")
    assert rows["ro"][0] == 1
    rows, _, _ = read(url=str(sqlite_db), query="SELECT query_only AS ro FROM pragma_query_only",
                      read_only=False)
    assert rows["ro"][0] == 0


def test_unknown_table_and_column_are_named(sqlite_db):
    with pytest.raises(DataError, match=r"table 'tickts' not found .* tables are: 'tickets'"):
        read(url=str(sqlite_db), table="tickts")
    with pytest.raises(DataError, match=r"no column 'bdy'; columns are: 'pk', 'body'"):
        read(url=str(sqlite_db), table="tickets", columns=["bdy"])


def test_bad_key_and_required_columns_are_named(sqlite_db):
    with pytest.raises(DataError, match=r"key column 'nope' is not in the query's result"):
        read(url=str(sqlite_db), query="select body from tickets", key=["nope"])
    with pytest.raises(DataError, match=r"`required` names 'bdy'"):
        read(url=str(sqlite_db), table="tickets", required=["bdy"])
    rows, rej, _ = read(url=str(sqlite_db), table="tickets", required=["tag"])
    assert rows.height == 50 and rej.height == 0      # explicit `required` replaces the default


def test_syntax_error_reports_statement_location(sqlite_db):
    q = "SELECT body,\n  tag\nFROM tickets WHERE WHERE pk = 1"
    with pytest.raises(DataError) as e:               # the read-only guard's parser says where
        read(url=str(sqlite_db), query=q)
    msg = str(e.value)
    assert "syntax error at line 3, column 20 near 'WHERE'" in msg and "SELECT body," in msg
    with pytest.raises(DataError) as e:               # without the guard, the database says where
        read(url=str(sqlite_db), query=q, read_only=False)
    msg = str(e.value)
    assert "syntax error" in msg and "line 3, column 14" in msg and "SELECT body," in msg


def test_unopenable_database(tmp_path):
    with pytest.raises(DataError, match="cannot connect.*unable to open database file"):
        read(url=str(tmp_path / "no" / "such" / "dir" / "x.db"), table="t")


def test_config_validation():
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="exactly one of `table` or `query`"):
        SqlSource(url="x.db")
    with pytest.raises(ValidationError, match="exactly one"):
        SqlSource(url="x.db", table="t", query="select 1")
    with pytest.raises(ValidationError, match="params"):
        SqlSource(url="x.db", table="t", params={"a": 1})


def test_safe_url_hides_password():
    assert safe_url("postgresql+psycopg://bob:hunter2@db:5432/x") == "postgresql+psycopg://bob:***@db:5432/x"
    assert safe_url("data/x.db") == "sqlite:///data/x.db"


def test_literal_password_is_masked_in_raw_config(tmp_path):
    url = "postgresql+psycopg://bob:hunter2@db.example:5432/x"
    assert SqlSource(url=url, table="t").raw_config["url"] == "postgresql+psycopg://bob:***@db.example:5432/x"
    assert "hunter2" not in json.dumps(SqlSink(url=url, table="t").raw_config)
    p = Pipeline(name="mask", sources=[{"sql": {"url": url, "table": "t"}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    assert "hunter2" not in json.dumps(p.sources[0].raw_config)
    assert p.sources[0].config.url == url              # the real URL is still used to connect


def test_yaml_env_url_never_stored(sqlite_db, tmp_path, monkeypatch):
    monkeypatch.setenv("TICKETS_DB", f"sqlite:///{sqlite_db}")
    f = tmp_path / "p.yaml"
    f.write_text(f"name: envsql\nworkdir: {tmp_path}/.curate\nout_dir: {tmp_path}/out\nsources:\n"
                 "  - sql: {url: '${env:TICKETS_DB}', query: 'select body from tickets where pk < :n', "
                 "params: {n: 4}, text: body}\n")
    res = Pipeline.from_yaml(f).run()
    assert res.data().height == 3
    manifest = res.manifest_path.read_text()
    assert "${env:TICKETS_DB}" in manifest and str(sqlite_db) not in manifest


def test_sink_sqlite_fail_replace_append(tmp_path):
    out = tmp_path / "out.db"
    df = pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "n": [1, 2], "tags": [["p"], ["q", "r"]]})
    SqlSink(url=str(out), table="curated").write(df, 0)
    with pytest.raises(CurateError, match="already exists"):
        SqlSink(url=str(out), table="curated").write(df, 0)
    SqlSink(url=str(out), table="curated", if_exists="append").write(df, 0)
    con = sqlite3.connect(out)
    assert con.execute("SELECT COUNT(*) FROM curated").fetchone()[0] == 4
    assert json.loads(con.execute("SELECT tags FROM curated WHERE id='b'").fetchone()[0]) == ["q", "r"]
    SqlSink(url=str(out), table="curated", if_exists="replace", columns=["id", "text"]).write(df, 0)
    assert con.execute("SELECT COUNT(*) FROM curated").fetchone()[0] == 2
    assert [r[1] for r in con.execute("PRAGMA table_info(curated)")] == ["id", "text"]


# ------------------------------------------------------------------------------ PostgreSQL
def test_postgres_table_in_own_schema_streams(pg_url, table_name):
    schema = "s_" + table_name
    fill(pg_url, table_name, 120, schema=schema)
    try:
        rows, rej, n = read(url=pg_url, table=table_name, schema=schema, text="body", chunk_size=50)
        assert n == 3 and rows.height == 119 and rej["source"].to_list() == [f"sql:{schema}.{table_name}:pk=3"]
        rows, _, _ = read(url=pg_url, query=f"select pk, body from {schema}.{table_name} where tag = :t "
                                            "order by pk limit 3", params={"t": "b"}, key=["pk"])
        assert rows["pk"].to_list() == [2, 4, 6]
    finally:
        drop(pg_url, table_name, schema=schema)


def test_postgres_uses_a_server_side_cursor(pg_url, table_name):
    fill(pg_url, table_name, 300)
    eng = sa.create_engine(pg_url)
    batches = SqlSource(url=pg_url, table=table_name, chunk_size=100).read()
    try:
        first = next(batches)                         # mid-stream: the cursor is open on the server
        assert first.rows.height == 100
        with eng.connect() as other:
            queries = other.execute(sa.text(
                "select query from pg_stat_activity where query ilike 'fetch forward%' "
                "or query ilike 'declare%cursor%'")).scalars().all()
        assert queries, "no server-side cursor activity seen"
        assert sum(b.rows.height for b in batches) + first.rows.height == 300
    finally:
        batches.close()                               # ends the read transaction (and its lock)
        eng.dispose()
        drop(pg_url, table_name)


def test_postgres_read_only_transaction_refuses_writes_the_keyword_check_misses(pg_url, table_name):
    eng = sa.create_engine(pg_url)
    with eng.begin() as c:
        c.exec_driver_sql(f"CREATE SEQUENCE {table_name}")
    try:
        with pytest.raises(DataError, match="read-only transaction"):
            read(url=pg_url, query=f"select nextval('{table_name}')")
    finally:
        with eng.begin() as c:
            c.exec_driver_sql(f"DROP SEQUENCE {table_name}")
        eng.dispose()


def test_postgres_syntax_error_location(pg_url):
    with pytest.raises(DataError) as e:
        read(url=pg_url, query="select 1,\n  2 frm\n  nothing here", read_only=False)
    assert "SyntaxError" in str(e.value) and "line 3, column 3" in str(e.value)


def test_postgres_connection_error_hides_password(pg_url):
    url = sa.engine.make_url(pg_url).set(password="S3cretPW!", port=1)
    url_s = url.render_as_string(hide_password=False)
    with pytest.raises(DataError) as e:
        read(url=url_s, table="t", connect_timeout=2)
    assert "S3cretPW" not in str(e.value) and "***" in str(e.value) and "cannot connect" in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_postgres_unknown_database_message(pg_url):
    url = sa.engine.make_url(pg_url).set(database="no_such_db_xyz", password="pw123")
    with pytest.raises(DataError, match="no_such_db_xyz") as e:
        read(url=url.render_as_string(hide_password=False), table="t")
    assert "pw123" not in str(e.value)


def test_postgres_sink_roundtrip(pg_url, table_name):
    df = pl.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "score": [0.5, 1.0, None]})
    try:
        SqlSink(url=pg_url, table=table_name).write(df, 0)
        rows, _, _ = read(url=pg_url, query=f"select id, text, score from {table_name} order by id")
        assert rows.select("id", "text", "score").equals(df)
    finally:
        drop(pg_url, table_name)


# ------------------------------------------------------------------------------ MariaDB
def test_mariadb_table_streams_and_refuses_writes(mariadb_url, table_name):
    fill(mariadb_url, table_name, 30)
    try:
        rows, rej, n = read(url=mariadb_url, table=table_name, text="body", chunk_size=8)
        assert n == 4 and rows.height == 29 and rej.height == 1
        assert rows["source"][0] == f"sql:{table_name}:pk=1"
        with pytest.raises(DataError, match="DROP"):
            read(url=mariadb_url, query=f"drop table {table_name}")
        rows, _, _ = read(url=mariadb_url, query=f"select count(*) as n from {table_name} where tag = :t",
                          params={"t": "a"})
        assert rows["n"][0] == 15
    finally:
        drop(mariadb_url, table_name)


def test_mariadb_session_is_read_only(mariadb_url, table_name):
    fill(mariadb_url, table_name, 3)
    try:
        # the second guard behind the keyword check: the session itself is read-only
        rows, _, _ = read(url=mariadb_url, query="select @@session.tx_read_only as ro")
        assert rows["ro"][0] == 1
        rows, _, _ = read(url=mariadb_url, query="select @@session.tx_read_only as ro", read_only=False)
        assert rows["ro"][0] == 0
    finally:
        drop(mariadb_url, table_name)


def _tables(url: str) -> list[str]:
    eng = sa.create_engine(url)
    try:
        return sa.inspect(eng).get_table_names()
    finally:
        eng.dispose()


@pytest.mark.parametrize("db", ["pg_url", "mariadb_url"])
def test_sink_replace_swaps_in_a_full_table(db, request, table_name):
    url = request.getfixturevalue(db)
    fill(url, table_name, 5)
    try:
        df = pl.DataFrame({"id": ["a", "b"], "text": ["new x", "new y"]})
        SqlSink(url=url, table=table_name, if_exists="replace").write(df, 0)
        rows, _, _ = read(url=url, query=f"select id, text from {table_name} order by id")
        assert rows.select("id", "text").equals(df)
        assert not [t for t in _tables(url) if t.startswith(table_name + "__curate")]   # no leftovers
    finally:
        drop(url, table_name)


def test_mariadb_syntax_error_location_and_sink(mariadb_url, table_name):
    with pytest.raises(DataError) as e:
        read(url=mariadb_url, query="select 1,\n 2 frm nothing here", read_only=False)
    assert "line 2" in str(e.value) and "ProgrammingError" in str(e.value)
    df = pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "n": [1, 2]})
    try:
        SqlSink(url=mariadb_url, table=table_name).write(df, 0)
        rows, _, _ = read(url=mariadb_url, table=table_name)
        assert sorted(rows["text"].to_list()) == ["x", "y"]
    finally:
        drop(mariadb_url, table_name)


@pytest.mark.parametrize("db", ["sqlite", "pg_url", "mariadb_url"])
def test_sink_streams_the_final_table_part_by_part(db, request, table_name, tmp_path):
    """Through the engine the sql output inserts the final table part by part (the whole-table
    ``write`` is never called): every row arrives, replace swaps a full table in, and an append
    spanning several parts is one transaction."""
    from curate.sink import Sink
    url = f"sqlite:///{tmp_path / 'out.db'}" if db == "sqlite" else request.getfixturevalue(db)
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"text": f"row {i}", "tags": [str(i % 3)]}) + "\n" for i in range(350)))

    def build(if_exists: str):
        return Pipeline(name="sqlstream", sources=[{"jsonl": {"path": str(src)}}], batch_size=100,
                        outputs=[{"sql": {"url": url, "table": table_name, "if_exists": if_exists}}],
                        workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o")).run(force=True)
    mp = pytest.MonkeyPatch()
    mp.setattr(Sink, "write", lambda self, df, seed: pytest.fail("the whole-table path was used"))
    try:
        rep = next(r for r in build("replace").reports if r.kind == "output")
        assert rep.rows_in == 350
        rows, _, _ = read(url=url, table=table_name)
        assert rows.height == 350 and sorted(rows["text"].to_list()) == sorted(f"row {i}" for i in range(350))
        assert json.loads(rows.filter(pl.col("text") == "row 4")["tags"][0]) == ["1"]
        build("append")
        rows, _, _ = read(url=url, table=table_name)
        assert rows.height == 700
        assert not [t for t in _tables(url) if t.startswith(table_name + "__curate")]
    finally:
        mp.undo()
        if db != "sqlite":
            drop(url, table_name)
