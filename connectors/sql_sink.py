"""The ``sql`` output: curated rows into a database table (SQLAlchemy), created or replaced under a
temporary name and renamed into place, or appended in one transaction."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import Field

from curate import records as R
from curate.connectors.sql import _MaskedRawConfig, db_error, make_engine, safe_url
from curate.errors import CurateError, DataError
from curate.extras import require
from curate.registry import register_output
from curate.sink import Sink, SinkConfig


class SqlSinkConfig(SinkConfig):
    """Write the final rows to a database table."""

    url: str = Field(description="SQLAlchemy URL (e.g. ${env:OUT_DB}) or a SQLite file path.")
    table: str = Field(description="Table to write.")
    db_schema: str | None = Field(default=None, alias="schema", description="Schema of the table.")
    if_exists: Literal["fail", "replace", "append"] = Field(
        default="fail", description="What to do when the table exists.")
    columns: list[str] | None = Field(default=None, description="Columns to write (default all).")
    chunk_size: int = Field(default=5_000, ge=1, description="Rows per INSERT batch (executemany).")
    connect_timeout: float | None = Field(default=10.0, gt=0, description="Seconds to wait for a connection.")

    model_config = {"populate_by_name": True, "extra": "forbid"}


def _sa_type(dtype: pl.DataType):
    require("sqlalchemy", extra="sql")
    import sqlalchemy as sa
    if dtype == pl.Boolean:
        return sa.Boolean()
    if dtype.is_integer():
        return sa.BigInteger()
    if dtype.is_float():
        return sa.Float()
    if dtype == pl.Date:
        return sa.Date()
    if dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
        return sa.DateTime()
    return sa.Text()


@register_output("sql")
class SqlSink(_MaskedRawConfig, Sink):
    """Curated rows into a table: a new or replaced table is filled under a temporary name and
    renamed into place; appends run in one transaction. Nested values are stored as JSON text."""

    Config = SqlSinkConfig

    def targets(self) -> list[Path]:
        return []  # a database table, not a local path

    def describe(self) -> str:
        return f"sql → {self.config.table} at {safe_url(self.config.url)}"

    def _insert(self, conn, table, frames) -> None:
        for df in frames:
            for start in range(0, df.height, self.config.chunk_size):
                conn.execute(table.insert(), df.slice(start, self.config.chunk_size).to_dicts())

    def _create_and_swap(self, engine, df: pl.DataFrame, rest, exists: bool) -> None:
        """Fill a temporary table, then rename it into place, so readers never see a half-written
        or missing table — also on MySQL/MariaDB, whose DDL is not transactional
        (``RENAME TABLE`` swaps atomically there; elsewhere DDL runs in the transaction)."""
        import uuid

        require("sqlalchemy", extra="sql")
        import sqlalchemy as sa
        c = self.config
        tmp_name = f"{c.table}__curate_{uuid.uuid4().hex[:8]}"
        tmp = sa.Table(tmp_name, sa.MetaData(),
                       *[sa.Column(n, _sa_type(t)) for n, t in df.schema.items()], schema=c.db_schema)
        q = engine.dialect.identifier_preparer
        qual = (lambda n: f"{q.quote_schema(c.db_schema)}.{q.quote(n)}") if c.db_schema else q.quote
        mysql = engine.dialect.name in ("mysql", "mariadb")
        try:
            with engine.begin() as conn:
                tmp.create(conn)
                self._insert(conn, tmp, itertools.chain([df], rest))
            with engine.begin() as conn:
                if mysql:
                    if exists:
                        old = f"{c.table}__curate_old_{uuid.uuid4().hex[:8]}"
                        conn.exec_driver_sql(f"RENAME TABLE {qual(c.table)} TO {qual(old)}, "
                                             f"{qual(tmp_name)} TO {qual(c.table)}")
                        conn.exec_driver_sql(f"DROP TABLE {qual(old)}")
                    else:
                        conn.exec_driver_sql(f"RENAME TABLE {qual(tmp_name)} TO {qual(c.table)}")
                else:
                    if exists:
                        conn.exec_driver_sql(f"DROP TABLE {qual(c.table)}")
                    conn.exec_driver_sql(f"ALTER TABLE {qual(tmp_name)} RENAME TO {q.quote(c.table)}")
        except BaseException:
            with engine.begin() as conn:             # leave no temporary table behind
                tmp.drop(conn, checkfirst=True)
            raise

    def write(self, df: pl.DataFrame, seed: int) -> list[Path]:
        return self.write_stream(iter([df]), seed)[0]

    def streams(self, columns: list[str]) -> bool:
        """Rows are inserted part by part (one transaction, or a table swapped in at the end)."""
        return True

    def _prepare(self, df: pl.DataFrame) -> pl.DataFrame:
        c = self.config
        if c.columns:
            missing = [x for x in c.columns if x not in df.columns]
            if missing:
                raise DataError(f"output sql: column {missing[0]!r} not in the data; columns are: "
                                f"{', '.join(map(repr, df.columns))}")
            df = df.select(c.columns)
        return df.with_columns(R.json_text(n) for n, t in df.schema.items() if t.is_nested())

    def write_stream(self, frames, seed: int) -> tuple[list[Path], int]:
        require("sqlalchemy", extra="sql")
        import sqlalchemy as sa
        c = self.config
        count = [0]

        def prepared():
            for df in frames:
                count[0] += df.height
                yield self._prepare(df)
        parts = prepared()
        first = next(parts, None)
        if first is None:
            first = self._prepare(pl.DataFrame())
        engine = make_engine(c.url, c.connect_timeout)
        try:
            with engine.connect() as conn:
                exists = sa.inspect(conn).has_table(c.table, schema=c.db_schema)
            if exists and c.if_exists == "fail":
                raise CurateError(f"output sql: table {c.table!r} already exists at {safe_url(c.url)} "
                                  "(set if_exists: replace or append)")
            if exists and c.if_exists == "append":
                with engine.begin() as conn:         # one transaction: all rows or none
                    table = sa.Table(c.table, sa.MetaData(), schema=c.db_schema, autoload_with=conn)
                    self._insert(conn, table, itertools.chain([first], parts))
            else:
                self._create_and_swap(engine, first, parts, exists)
        except sa.exc.DBAPIError as e:
            raise db_error(e, c.url, f"output sql ({c.table})") from None
        finally:
            engine.dispose()
        return [], count[0]
