"""Benchmark the sql and s3 sources against pandas on the same 1M rows.

One run builds the data once (a SQLite table, and the same rows as a CSV object on moto's S3
server started in this process), then measures each case in a fresh child process so that its
peak RSS (VmHWM after resetting it post-imports, minus the RSS then) belongs to that case alone:

  * curate ``sql`` source (SQLAlchemy, streamed in chunks)   vs  ``pandas.read_sql`` (whole table)
  * curate ``s3`` source (StreamingBody → CSV parser, batches) vs  ``pandas.read_csv`` of the body
  * streaming bound: the sql source on a table 10× its chunk size and on a table 1× its chunk
    size — peak RSS should be about the same (bounded by the chunk, not the table).

The sources' batches are consumed and dropped, as a streaming consumer would (the engine then
keeps the rows it needs). Last line::

  connectors: sqlite <n> rows/s (pandas.read_sql <n>), s3 <n> rows/s (pandas.read_csv <n>), peak RSS streaming 10x chunk <m> MiB vs 1x chunk <m> MiB vs pandas whole <m> MiB

    .venv/bin/python bench/connectors.py [--small]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BUCKET = "bench-connectors"


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> float:
    """Reset this process's peak RSS (Linux: clear_refs 5) and return the current RSS (MiB)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # not permitted: the peak then includes import-time memory (reported as is)
    return _status_mib("VmRSS")


def peak_mib() -> float:
    return _status_mib("VmHWM")


# ------------------------------------------------------------------------------ child cases
def case(name: str, args: dict) -> dict:
    """Run one measurement in this (child) process and return rows, seconds, memory."""
    import gc

    import boto3
    import pandas as pd
    import polars as pl  # noqa: F401  (imports counted in the baseline, not the case)
    import sqlalchemy  # noqa: F401

    from curate.connectors.s3 import S3Source
    from curate.connectors.sql import SqlSource
    gc.collect()
    base = reset_peak()
    t0 = time.perf_counter()
    rows = 0
    if name == "curate_sql":
        src = SqlSource(url=args["db"], table=args.get("table", "t"), chunk_size=args["chunk"])
        for b in src.read():
            rows += b.rows.height
    elif name == "pandas_sql":
        import sqlite3
        con = sqlite3.connect(args["db"])
        df = pd.read_sql(f"SELECT * FROM {args.get('table', 't')}", con)
        rows = len(df)
    elif name == "curate_s3":
        src = S3Source(url=f"s3://{BUCKET}/{args['key']}", endpoint_url=args["endpoint"],
                       batch_rows=args["chunk"])
        for b in src.read():
            rows += b.rows.height
    elif name == "pandas_s3":
        client = boto3.client("s3", endpoint_url=args["endpoint"], region_name="us-east-1")
        body = client.get_object(Bucket=BUCKET, Key=args["key"])["Body"]
        df = pd.read_csv(body)
        rows = len(df)
    else:
        raise SystemExit(f"unknown case {name}")
    dt = time.perf_counter() - t0
    return {"case": name, "rows": rows, "seconds": dt, "rows_per_s": rows / dt,
            "peak_mib": peak_mib() - base}


def run_case(name: str, args: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", name, "--args", json.dumps(args)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if out.returncode != 0:
        raise SystemExit(f"case {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ data
def make_rows(n: int):
    import polars as pl
    i = pl.col("pk")
    return pl.DataFrame({"pk": pl.int_range(n, eager=True)}).with_columns(
        pl.format("ticket {} says the invoice for order {} was charged twice", i, i * 7 % 100_003).alias("text"),
        pl.when(i % 3 == 0).then(pl.lit("billing")).otherwise(pl.lit("tech")).alias("label"),
        ((i % 100).cast(pl.Float64) / 10).alias("score"),
    )


def write_sqlite(path: Path, df, table: str = "t") -> None:
    import sqlite3
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE {table} (pk INTEGER PRIMARY KEY, text TEXT, label TEXT, score REAL)")
    con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", df.iter_rows())
    con.commit()
    con.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="200k rows instead of 1M (well under 5 minutes)")
    ap.add_argument("--case")
    ap.add_argument("--args")
    a = ap.parse_args()
    if a.case:
        print(json.dumps(case(a.case, json.loads(a.args))))
        return

    n = 200_000 if a.small else 1_000_000
    chunk = n // 10
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    import boto3
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="curate-bench-") as tmp:
            t0 = time.perf_counter()
            df = make_rows(n)
            db = Path(tmp) / "big.db"
            write_sqlite(db, df)
            write_sqlite(Path(tmp) / "one.db", df.head(chunk))
            csv_path = Path(tmp) / "big.csv"
            df.write_csv(csv_path)
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            client.create_bucket(Bucket=BUCKET)
            client.upload_file(str(csv_path), BUCKET, "big.csv")
            print(f"data: {n:,} rows; sqlite {db.stat().st_size / 2**20:.0f} MiB, csv "
                  f"{csv_path.stat().st_size / 2**20:.0f} MiB (built in {time.perf_counter() - t0:.1f}s)")
            del df

            res = {
                "curate_sql": run_case("curate_sql", {"db": str(db), "chunk": chunk}),
                "pandas_sql": run_case("pandas_sql", {"db": str(db)}),
                "curate_s3": run_case("curate_s3", {"endpoint": endpoint, "key": "big.csv", "chunk": chunk}),
                "pandas_s3": run_case("pandas_s3", {"endpoint": endpoint, "key": "big.csv"}),
                "curate_sql_1x": run_case("curate_sql", {"db": str(Path(tmp) / "one.db"), "chunk": chunk}),
            }
    finally:
        server.stop()
    for k, r in res.items():
        assert r["rows"] in (n, chunk), (k, r)
        print(f"{k:14s} {r['rows']:>9,} rows {r['seconds']:7.2f}s {r['rows_per_s']:>11,.0f} rows/s "
              f"peak +{r['peak_mib']:7.1f} MiB")
    s10, s1 = res["curate_sql"]["peak_mib"], res["curate_sql_1x"]["peak_mib"]
    print(f"streaming bound: table = 10x chunk peaks at +{s10:.0f} MiB, table = 1x chunk at +{s1:.0f} MiB "
          f"(ratio {s10 / max(s1, 1):.2f}; pandas whole table +{res['pandas_sql']['peak_mib']:.0f} MiB)")
    print(f"connectors: sqlite {res['curate_sql']['rows_per_s']:.0f} rows/s "
          f"(pandas.read_sql {res['pandas_sql']['rows_per_s']:.0f}), "
          f"s3 {res['curate_s3']['rows_per_s']:.0f} rows/s (pandas.read_csv {res['pandas_s3']['rows_per_s']:.0f}), "
          f"peak RSS streaming 10x chunk {s10:.0f} MiB vs 1x chunk {s1:.0f} MiB "
          f"vs pandas whole {res['pandas_sql']['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
