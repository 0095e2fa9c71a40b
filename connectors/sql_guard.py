"""The read-only guard of the ``sql`` source: an allowlist over the statement as sqlglot parses it
in the database's own dialect (not keyword spotting), so only one plain read gets through.

It is a second line. The real guard is a database user that may only read (README, "SQL"); the
source also runs the query in a read-only transaction/session behind this check.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from typing import Iterator

from curate.errors import DataError
from curate.extras import require

# MySQL/MariaDB run the text of /*! ... */, /*!50000 ... */ and /*M! ... */ comments as SQL; sqlglot
# (rightly, for other dialects) drops comments. Refused anywhere in the raw text, strings included:
# a false alarm is a clear error, a miss could write a file on the server.
_EXEC_COMMENT = re.compile(r"/\*\s*M?!", re.I)
_OUTFILE = re.compile(r"\binto\s+(outfile|dumpfile)\b", re.I)

# Functions that write, execute, reach other servers or read the server's own files. Names are
# matched without schema and case; a trailing ``*`` matches a prefix.
_BAD_FUNCTIONS = {
    # PostgreSQL: large objects (server file import/export), adminpack, dblink, server admin
    "lo_import": "writes a server file into the database", "lo_export": "writes a server file",
    "lo_from_bytea": "writes a large object", "lo_put": "writes a large object",
    "lo_create": "writes a large object", "lo_unlink": "deletes a large object",
    "lowrite": "writes a large object", "lo_truncate": "writes a large object",
    "pg_file_write": "writes a server file", "pg_file_rename": "renames a server file",
    "pg_file_unlink": "deletes a server file", "pg_file_sync": "touches a server file",
    "pg_read_file": "reads a server file", "pg_read_binary_file": "reads a server file",
    "pg_ls_dir": "lists server directories", "pg_stat_file": "reads server file metadata",
    "dblink*": "runs SQL on another server", "pg_terminate_backend": "kills sessions",
    "pg_cancel_backend": "cancels sessions", "pg_reload_conf": "reloads server configuration",
    "pg_rotate_logfile": "rotates server logs", "set_config": "changes session settings",
    "pg_promote": "promotes a standby", "pg_switch_wal": "switches WAL files",
    "pg_advisory*": "takes advisory locks", "pg_try_advisory*": "takes advisory locks",
    "pg_sleep*": "stalls the server (denial of service)",
    "query_to_xml*": "runs SQL given as text (hidden from this check)",
    "cursor_to_xml*": "reads a cursor opened elsewhere", "pg_notify": "sends notifications",
    "pg_create_*": "creates replication slots or restore points", "pg_drop_*": "drops replication slots",
    "pg_replication_*": "changes replication state", "pg_logical_*": "writes or reads replication streams",
    "pg_backup_*": "starts or stops backups", "pg_start_backup": "starts a backup",
    "pg_stop_backup": "stops a backup", "pg_wal_replay_*": "pauses or resumes WAL replay",
    "pg_stat_reset*": "resets server statistics", "pg_import_system_collations": "writes the catalog",
    "sys_get": "reads server environment", "sys_set": "changes server environment",
    # MySQL / MariaDB: server files, UDF shells, stalls, locks
    "load_file": "reads a server file", "sys_exec": "runs a shell command", "sys_eval": "runs a shell command",
    "sleep": "stalls the server (denial of service)", "benchmark": "stalls the server (denial of service)",
    "get_lock": "takes a named lock", "release_lock": "releases a named lock",
    "release_all_locks": "releases named locks", "master_pos_wait": "waits on replication",
    "source_pos_wait": "waits on replication",
    # SQLite: extension loading runs native code; file helpers of the shell / fileio extension
    "load_extension": "loads native code", "writefile": "writes a file", "readfile": "reads a file",
    "edit": "runs an editor", "fts3_tokenizer": "can load native code",
}
_EXACT = {k: v for k, v in _BAD_FUNCTIONS.items() if not k.endswith("*")}
_PREFIX = [(k[:-1], v) for k, v in _BAD_FUNCTIONS.items() if k.endswith("*")]

#: SQLAlchemy backend name → sqlglot dialect.
DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite",
            "mssql": "tsql", "oracle": "oracle", "duckdb": "duckdb", "snowflake": "snowflake",
            "bigquery": "bigquery", "redshift": "redshift", "trino": "trino", "clickhouse": "clickhouse"}


def dialect_of(url: str) -> str | None:
    """The sqlglot dialect for a SQLAlchemy URL (None: sqlglot's generic SQL)."""
    require("sqlalchemy", extra="sql")
    from sqlalchemy.engine import make_url
    try:
        return DIALECTS.get(make_url(url).get_backend_name())
    except Exception:  # noqa: BLE001 - an unparsable URL fails later with its own (masked) error
        return None


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning (with the statement) when it falls back to a raw Command."""
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _function_name(node) -> str | None:
    require("sqlglot", extra="sql")
    from sqlglot import exp
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return None


def _why_function(name: str) -> str | None:
    if name in _EXACT:
        return _EXACT[name]
    for prefix, why in _PREFIX:
        if name.startswith(prefix):
            return why
    return None


def _syntax_message(e: Exception, query: str, dialect: str | None) -> str:
    """``syntax error at line L, column C near 'tok': ...`` from sqlglot's first error, plus the statement."""
    errs = getattr(e, "errors", None) or []
    where = ""
    if errs:
        err = errs[0]
        tok = str(err.get("highlight") or "")
        col = int(err.get("col") or 0) - len(tok) + 1
        where = f" at line {err.get('line')}, column {max(col, 1)}" + (f" near {tok!r}" if tok else "")
        detail = str(err.get("description") or "").strip()
    else:
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return (f"syntax error{where} ({detail}; parsed as {dialect or 'generic SQL'}: only a single "
            "plain read statement is accepted)")


def _refuse(msg: str, query: str | None = None) -> DataError:
    text = (f"query: {msg} (the source is read-only; set read_only: false to run it anyway, "
            "and use a database user that may only read)")
    if query is not None:
        shown = " ".join(query.split())
        text += "\n  in statement: " + (shown if len(shown) <= 200 else shown[:197] + "...")
    return DataError(text)


def check_read_only(query: str, dialect: str | None = None) -> None:
    """Raise :class:`DataError` unless ``query`` is exactly one plain read.

    Allowed: one SELECT (with WITH, UNION/INTERSECT/EXCEPT, VALUES, subqueries). Refused: anything
    sqlglot cannot parse in ``dialect``; a second statement; DML/DDL anywhere in the tree (also in
    a CTE); INTO (tables, variables, OUTFILE/DUMPFILE); COPY; locking clauses (FOR UPDATE/SHARE);
    executable comments; functions that write, execute or read server files.
    """
    from curate.extras import require
    sqlglot = require("sqlglot", "sql", "the read-only check of sql queries")
    from sqlglot import exp
    require("sqlglot", extra="sql")
    from sqlglot.errors import SqlglotError
    if not query.strip().rstrip(";").strip():
        raise DataError("query: empty statement")
    if _EXEC_COMMENT.search(query):
        raise _refuse("executable comments (/*! ... */, /*M! ... */) are refused: MySQL and MariaDB "
                      "run their text as SQL")
    try:
        with _quiet_sqlglot():
            trees = [t for t in sqlglot.parse(query, read=dialect) if t is not None]
    except SqlglotError as e:
        if _OUTFILE.search(query):
            raise _refuse("INTO OUTFILE/DUMPFILE writes a file on the server") from None
        raise _refuse(_syntax_message(e, query, dialect), query) from None
    if not trees:
        raise DataError("query: empty statement")
    if len(trees) > 1:
        raise _refuse(f"only one statement is allowed; found {len(trees)}")
    root = trees[0]
    if isinstance(root, exp.Command):
        raise _refuse(f"must be a read-only SELECT/WITH query; {str(root.this).upper()} commands are refused")
    if not isinstance(root, (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)):
        raise _refuse(f"must be a read-only SELECT/WITH query; {root.key.upper()} statements are refused")
    for node in root.walk():
        if isinstance(node, (exp.DML, exp.DDL, exp.Command, exp.Copy, exp.Pragma, exp.Set,
                             exp.Transaction, exp.Commit, exp.Rollback)):
            word = str(node.this).upper() if isinstance(node, exp.Command) else node.key.upper()
            raise _refuse(f"the query contains {word} (DDL/DML is refused)")
        if isinstance(node, exp.Into):
            raise _refuse("SELECT ... INTO writes a table, variable or file; INTO is refused")
        if isinstance(node, exp.Lock):
            raise _refuse("locking clauses (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE) are refused: "
                          "they block writers")
        name = _function_name(node)
        why = _why_function(name) if name else None
        if why:
            raise _refuse(f"function {name}() is refused: it {why}")
