"""SQL databases through SQLAlchemy 2: a ``sql`` source (a table or a read-only query, streamed in
chunks with server-side cursors) and a ``sql`` output that writes curated rows to a table.

Credentials come from ``${env:...}`` in the URL; every message shows the URL with the password
masked by text (:func:`curate.io.mask_url`, so URLs that do not parse are masked too), driver
messages are scrubbed of the password, and errors never chain the driver exception, whose text or
traceback could carry it. A raw ``@`` in a password is taken literally.

    sources:
      - sql: {url: "${env:TICKETS_DB}", table: tickets, text: body, label: tag, chunk_size: 50000}
      - sql: {url: data/app.db, query: "select body, tag from tickets where created > :since",
              params: {since: "2024-01-01"}, text: body}
    outputs:
      - sql: {url: "${env:OUT_DB}", table: curated, if_exists: replace}
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Iterator

import polars as pl
from pydantic import Field, field_validator, model_validator

from curate import records as R
from curate.errors import DataError
from curate.registry import register_source
from curate.source import Source, SourceBatch, SourceConfig, quarantine
from curate.connectors.sql_guard import check_read_only, dialect_of
from curate.io import mask_secrets, mask_url, url_secrets
from curate.extras import require

__all__ = ["SqlSource", "check_read_only", "safe_url"]

def url_or_path(url: str) -> str:
    """Accept a SQLAlchemy URL, or a plain file path meaning SQLite (the default dialect)."""
    if "://" in url or url.startswith("sqlite:"):
        return url
    return f"sqlite:///{url}"


def safe_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and manifests). Masked by text
    (everything between ``://`` and the last ``@``), so a URL that does not parse, or a password
    with a raw ``@``, ``:``, ``/`` or ``#``, is hidden whole too."""
    url = url_or_path(url)
    return url if url.startswith("sqlite:") else mask_url(url)   # a file path, no credentials


_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>.*)@(?P<rest>[^@]*)$", re.S)


def db_url(url: str):
    """A SQLAlchemy URL object for ``url``. A raw ``@`` in the password (which URL parsing splits
    at the wrong place, putting the password's tail into the host) is taken literally."""
    require("sqlalchemy", extra="sql")
    from sqlalchemy.engine import make_url
    url = url_or_path(url)
    m = _AUTHORITY.match(url)
    if m and "@" in m.group("info"):
        user, _, pw = m.group("info").partition(":")
        return make_url(f"{m.group('scheme')}{user}@{m.group('rest')}").set(password=pw)
    return make_url(url)


def _guard_url(url: str):
    try:
        return db_url(url)
    except Exception:  # noqa: BLE001 - a bad URL fails below, with its own masked error
        return url_or_path(url)


def _password(url: str) -> str | None:
    try:
        return db_url(url).password
    except Exception:  # noqa: BLE001
        return None


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL's credentials masked, however the URL was (mis)parsed."""
    return mask_secrets(text, [_password(url), *url_secrets(url_or_path(url))])


def _line_col(query: str, pos: int) -> str:
    """1-based ``line L, column C`` of character offset ``pos`` (0-based) in ``query``."""
    pos = max(0, min(pos, len(query)))
    line = query.count("\n", 0, pos) + 1
    col = pos - (query.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}"


def _statement_location(query: str, orig: BaseException) -> str | None:
    """Where in the statement the database says the error is, when the driver tells us."""
    msg = str(orig)
    diag = getattr(orig, "diag", None)                       # psycopg: 1-based char position
    pos = getattr(diag, "statement_position", None) if diag is not None else None
    if pos:
        # The position counts from the statement sent, which for a server-side cursor starts
        # with "DECLARE ... CURSOR FOR": so anchor on the token PostgreSQL names, at or before it.
        pos = int(pos) - 1
        m = re.search(r'at or near "(.*?)"', msg)
        if m and m.group(1):
            hits = [h.start() for h in re.finditer(re.escape(m.group(1)), query) if h.start() <= pos]
            if hits:
                return _line_col(query, hits[-1])
        if pos < len(query):
            return _line_col(query, pos)
    m = re.search(r"near '(.*?)' at line (\d+)", msg, re.S)   # MySQL/MariaDB
    if m:
        snippet, line = m.group(1), int(m.group(2))
        lines = query.splitlines() or [""]
        text_line = lines[line - 1] if line - 1 < len(lines) else ""
        col = text_line.find(snippet[:20].splitlines()[0] if snippet else "")
        return f"line {line}" + (f", column {col + 1}" if col >= 0 else "")
    m = re.search(r'near "(.*?)"', msg)                       # SQLite
    if m:
        hit = re.search(re.escape(m.group(1)), query)
        if hit:
            return _line_col(query, hit.start())
    return None


def db_error(exc: BaseException, url: str, what: str, query: str | None = None) -> DataError:
    """A :class:`DataError` naming the (password-less) URL, the statement and the location."""
    orig = getattr(exc, "orig", None) or exc
    kind = type(orig).__name__
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else kind
    msg = f"{what}: {safe_url(url)}: {kind}: {first}"
    if query is not None:
        loc = _statement_location(query, orig)
        shown = " ".join(query.split())
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        msg += f"\n  in statement{' at ' + loc if loc else ''}: {shown}"
    return DataError(_scrub(msg, url))


def _masked(cfg: dict[str, Any]) -> dict[str, Any]:
    """A config dict with the URL's password hidden (``${env:...}`` references kept as written)."""
    url = cfg.get("url")
    if isinstance(url, str) and "${env:" not in url:
        cfg = {**cfg, "url": safe_url(url)}
    return cfg


class _MaskedRawConfig:
    """``raw_config`` (hashed for the cache, written to the manifest) never holds a password."""

    @property
    def raw_config(self) -> dict[str, Any]:
        return self._raw_config

    @raw_config.setter
    def raw_config(self, value: dict[str, Any]) -> None:
        self._raw_config = _masked(value)


def make_engine(url: str, connect_timeout: float | None = None):
    """A SQLAlchemy engine for ``url`` (no pooling: one connection per read or write)."""
    require("sqlalchemy", extra="sql")
    import sqlalchemy as sa
    require("sqlalchemy", extra="sql")
    from sqlalchemy.pool import NullPool
    url = db_url(url)
    args: dict[str, Any] = {}
    backend = url.get_backend_name()
    if connect_timeout is not None:
        if backend == "sqlite":
            args["timeout"] = connect_timeout
        elif backend in ("postgresql", "mysql", "mariadb"):
            args["connect_timeout"] = max(1, int(connect_timeout))
    return sa.create_engine(url, poolclass=NullPool, connect_args=args)


def set_read_only(conn) -> None:
    """Make the connection's transaction read-only where the dialect supports it."""
    require("sqlalchemy", extra="sql")
    import sqlalchemy as sa
    name = conn.dialect.name
    if name == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    elif name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif name in ("mysql", "mariadb"):
        # SESSION, not just this transaction: DDL commits implicitly and would escape it.
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        conn.exec_driver_sql("START TRANSACTION READ ONLY")
    else:  # other dialects: the keyword check is the guard
        conn.execute(sa.text("SELECT 1"))


def _chunks(conn, stmt, params: dict[str, Any], size: int) -> Iterator[tuple[list[str], list]]:
    """Yield ``(columns, rows)`` chunks of at most ``size`` rows, never the whole result.

    SQLite's cursor steps the statement lazily, so its DBAPI cursor is read directly (plain
    tuples, no per-row Row objects). Other dialects use ``stream_results`` — a server-side cursor
    (psycopg named cursor, PyMySQL SSCursor) — read in ``partitions``.
    """
    if conn.dialect.name == "sqlite":
        result = conn.execute(stmt, params)
        columns = _unique(list(result.keys()))
        cursor = result.cursor
        try:
            while True:
                part = cursor.fetchmany(size)
                if not part:
                    break
                yield columns, part
                del part                 # drop the tuples before fetching the next chunk
        finally:
            result.close()
        return
    result = conn.execution_options(stream_results=True, yield_per=size).execute(stmt, params)
    columns = _unique(list(result.keys()))
    try:
        for part in result.partitions(size):
            yield columns, part
            del part
    finally:
        result.close()


def _unique(names: list[str]) -> list[str]:
    """Column names made unique (``a, a`` → ``a, a_2``), as a query may repeat a name."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def _frame(columns: list[str], rows: list) -> pl.DataFrame:
    """A DataFrame from DBAPI row tuples (built row-wise in Rust; types inferred from all rows).

    Values are the driver's own types (e.g. SQLite dates stay ISO strings). A column whose values
    polars cannot unify (SQLite's dynamic typing) falls back to lenient per-column building, and
    anything still exotic becomes text.
    """
    try:
        return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)
    except Exception:  # noqa: BLE001 - mixed types in a column
        pass
    data = {}
    for name, values in zip(columns, zip(*rows)):
        try:
            data[name] = pl.Series(name, values, strict=False)
        except Exception:  # noqa: BLE001 - exotic driver types: keep as text
            data[name] = pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)
    return pl.DataFrame(data)


class SqlSourceConfig(SourceConfig):
    """Read a table or a query from any SQLAlchemy database."""

    url: str = Field(description="SQLAlchemy URL (e.g. ${env:TICKETS_DB}) or a SQLite file path.")
    table: str | None = Field(default=None, description="Table to read (alternative to `query`).")
    db_schema: str | None = Field(default=None, alias="schema",
                                  description="Schema of `table` (PostgreSQL schema / MySQL database).")
    columns: list[str] | None = Field(default=None, description="Columns of `table` to read (default all).")
    query: str | None = Field(default=None, description="A read-only SELECT; use :name placeholders for params.")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="Bound parameters for `query` (never formatted into the SQL).")
    key: list[str] | None = Field(default=None,
                                  description="Columns that identify a row in locators (default: the "
                                              "table's primary key; row number for queries).")
    chunk_size: int = Field(default=10_000, ge=1, le=10_000_000,
                            description="Rows fetched per round trip / batch (server-side cursor).")
    read_only: bool = Field(default=True, description="Refuse DDL/DML and run in a read-only transaction.")
    required: list[str] | None = Field(
        default=None, description="Columns that must be non-null; rows with nulls there are quarantined "
                                  "(default: the columns mapped to `text` and `label`).")
    connect_timeout: float | None = Field(default=10.0, gt=0, description="Seconds to wait for a connection.")

    model_config = {"populate_by_name": True, "extra": "forbid"}

    @model_validator(mode="after")
    def _one_of(self):
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        if self.query is not None and self.columns:
            raise ValueError("`columns` applies to `table`; select the columns in `query` instead")
        if self.params and self.query is None:
            raise ValueError("`params` binds placeholders of `query`; there is no query")
        return self

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v):
        if v is not None and not v.strip():
            raise ValueError("query is empty")
        return v


@register_source("sql")
class SqlSource(_MaskedRawConfig, Source):
    """Rows from a SQL table or query, streamed in chunks with a server-side cursor where the dialect
    has one (psycopg named cursors, PyMySQL SSCursor; SQLite steps its cursor natively)."""

    Config = SqlSourceConfig

    def describe(self) -> str:
        c = self.config
        what = f"table {c.table}" if c.table else "query"
        return f"{self.origin} ({what} at {safe_url(c.url)})"

    def _statement(self, conn):
        """The SELECT to run, its text (for messages), locator label and key columns."""
        require("sqlalchemy", extra="sql")
        import sqlalchemy as sa
        c = self.config
        if c.query is not None:
            label = "query:" + hashlib.sha1(c.query.encode()).hexdigest()[:8]
            return sa.text(c.query), c.query, label, list(c.key or [])
        insp = sa.inspect(conn)
        if not insp.has_table(c.table, schema=c.db_schema):
            have = insp.get_table_names(schema=c.db_schema)
            raise DataError(f"source {self.origin}: table {c.table!r} not found in {safe_url(c.url)}"
                            + (f" schema {c.db_schema!r}" if c.db_schema else "")
                            + f"; tables are: {', '.join(map(repr, have)) or '(none)'}")
        table = sa.Table(c.table, sa.MetaData(), schema=c.db_schema, autoload_with=conn)
        names = [col.name for col in table.columns]
        if c.columns:
            missing = [x for x in c.columns if x not in names]
            if missing:
                raise DataError(f"source {self.origin}: table {c.table!r} has no column {missing[0]!r}; "
                                f"columns are: {', '.join(map(repr, names))}")
        key = list(c.key or [col.name for col in table.primary_key.columns])
        for k in key:
            if k not in names:
                raise DataError(f"source {self.origin}: key column {k!r} is not in table {c.table!r}")
        cols = c.columns or names
        select_cols = cols + [k for k in key if k not in cols]
        stmt = sa.select(*[table.c[n] for n in select_cols])
        if key:
            stmt = stmt.order_by(*[table.c[k] for k in key])
        label = f"{c.db_schema}.{c.table}" if c.db_schema else c.table
        return stmt, str(stmt), label, key

    def read(self) -> Iterator[SourceBatch]:
        require("sqlalchemy", extra="sql")
        import sqlalchemy as sa
        c = self.config
        if c.query is not None and c.read_only:
            try:
                check_read_only(c.query, dialect_of(_guard_url(c.url)))
            except DataError as e:
                raise DataError(f"source {self.origin}: {e}") from None
        try:
            engine = make_engine(c.url, c.connect_timeout)
        except Exception as e:  # noqa: BLE001 - bad URL / missing driver
            raise DataError(_scrub(f"source {self.origin}: cannot use URL {safe_url(c.url)}: "
                                   f"{type(e).__name__}: {e}", c.url)) from None
        text_for_errors = c.query
        try:
            try:
                conn = engine.connect()
            except sa.exc.DBAPIError as e:
                raise db_error(e, c.url, f"source {self.origin}: cannot connect") from None
            with conn:
                try:
                    if c.read_only:
                        set_read_only(conn)
                    stmt, text_for_errors, label, key = self._statement(conn)
                    row_no = 0
                    for columns, part in _chunks(conn, stmt, c.params or {}, c.chunk_size):
                        df = _frame(columns, part)
                        del part                 # at most one chunk of tuples alive at a time
                        row_no += df.height
                        yield self._batch(df, label, key, row_no - df.height, c.columns)
                        del df
                except sa.exc.StatementError as e:
                    raise db_error(e, c.url, f"source {self.origin}: query failed",
                                   text_for_errors) from None
                finally:
                    try:
                        if conn.in_transaction():
                            conn.rollback()          # read-only: nothing to keep
                    except sa.exc.DBAPIError:
                        pass                         # connection already gone; error raised above
        finally:
            engine.dispose()

    def _batch(self, df: pl.DataFrame, label: str, key: list[str], start: int,
               columns: list[str] | None) -> SourceBatch:
        absent = [k for k in key if k not in df.columns]
        if absent:
            raise DataError(f"source {self.origin}: key column {absent[0]!r} is not in the query's "
                            f"result; columns are: {', '.join(map(repr, df.columns))}")
        if key:
            parts: list[Any] = []
            for i, k in enumerate(key):
                parts += ([pl.lit(",")] if i else []) + [pl.col(k).cast(pl.String).fill_null("NULL")]
            loc = pl.concat_str([pl.lit(f"sql:{label}:pk=")] + parts)
        else:
            loc = pl.concat_str([pl.lit(f"sql:{label}:row="),
                                 (pl.int_range(pl.len()) + start + 1).cast(pl.String)])
        df = df.with_columns(loc.alias(R.SOURCE))
        if columns:  # key columns added only for the locator
            df = df.select([*columns, R.SOURCE])
        required = self.config.required
        if required is None:
            required = [v for k, v in self.mapping().items() if k in ("text", "label")]
            required = [r for r in required if r in df.columns]   # a missing one: the engine says so
        else:
            absent = [r for r in required if r not in df.columns]
            if absent:
                raise DataError(f"source {self.origin}: `required` names {absent[0]!r}, which is not a "
                                f"column; columns are: {', '.join(map(repr, df.columns))}")
        if not required:
            return SourceBatch(df)
        null_any = pl.any_horizontal([pl.col(r).is_null() for r in required])
        bad = df.filter(null_any)
        if bad.height == 0:
            return SourceBatch(df)
        first_null = pl.coalesce([pl.when(pl.col(r).is_null()).then(pl.lit(r)) for r in required])
        detail = bad.select(pl.format("column {} is NULL", first_null).alias("d"))["d"].to_list()
        rejected = quarantine(bad[R.SOURCE].to_list(), ["null_value"] * bad.height, detail, self.origin)
        return SourceBatch(df.filter(~null_any), rejected)
