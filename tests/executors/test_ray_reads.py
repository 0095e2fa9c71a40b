"""Sources read in parallel on Ray (one task per file, per S3 object, per range of a SQL key) give
the local run's rows, ids, rejects (with file and line) and manifest counts."""
from __future__ import annotations

import json
import sqlite3
import uuid

import pytest


def _jsonl_parts(folder, parts):
    folder.mkdir(parents=True, exist_ok=True)
    for k, lines in enumerate(parts):
        (folder / f"part{k}.jsonl").write_text("".join(x + "\n" for x in lines))
    return folder


def _rows(k: int, n: int) -> list[str]:
    """``n`` rows of file ``k``: some repeat rows of other files (ids numbered over the whole
    table), one malformed line and one non-object per file."""
    out = []
    for i in range(n):
        text = f"shared row number {i % 5} is here" if i % 3 == 0 else f"file {k} row {i} has some words"
        out.append(json.dumps({"text": text, "label": "ab"[i % 2]}))
    out.insert(3, "{broken json")
    out.insert(7, "[1, 2]")
    return out


DOC = {
    "name": "reads", "seed": 2, "batch_size": 16,
    "steps": [{"clean": {"min_words": 3}}],
    "outputs": [{"jsonl": {"path": "{out}/all.jsonl"}}],
}


def _pieces(result) -> list:
    return [s["stats"].get("ray", {}).get("pieces") for s in result.manifest["sources"]]


def test_glob_read_one_task_per_file(run_both, tmp_path):
    """Eleven files of a glob (repeats across files, malformed lines; 2 CPUs: 8 tasks, some
    reading two files) and a second one-file source: the glob is read by the tasks, the single
    file by the driver; same rows, ids and rejects."""
    folder = _jsonl_parts(tmp_path / "in", [_rows(k, 10 + 7 * k) for k in range(11)])
    (tmp_path / "one.jsonl").write_text("".join(_rows(9, 12)[i] + "\n" for i in range(12)))
    doc = {**DOC, "sources": [{"jsonl": {"name": "glob", "path": f"{folder}/part*.jsonl"}},
                              {"jsonl": {"name": "one", "path": str(tmp_path / "one.jsonl")}}]}
    local, ray = run_both(doc)
    assert _pieces(ray) == [11, None]
    assert ray.manifest["sources"][0]["rejected"] == 22
    ids = ray.data()["id"]
    assert ids.n_unique() == ids.len() and ids.str.contains("-").any()   # repeats numbered globally
    # the cache entry a Ray read wrote is the local one: a local run on the Ray workdir is all cached
    from curate.pipeline import load_yaml
    path = ray.manifest["file"]
    p = load_yaml(path)
    p.executor = "local"
    again = p.run()
    assert all(s["cached"] for s in again.manifest["sources"])
    assert sorted(again.data()["id"].to_list()) == sorted(local.data()["id"].to_list())


def test_s3_prefix_one_task_per_object(run_both, s3_endpoint):
    """An S3 prefix (moto server) of three objects, one CSV and a gzipped JSONL among them."""
    import gzip

    import boto3
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"ray-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="in/a.jsonl", Body="\n".join(_rows(0, 25)).encode())
    client.put_object(Bucket=bucket, Key="in/b.jsonl.gz", Body=gzip.compress("\n".join(_rows(1, 20)).encode()))
    client.put_object(Bucket=bucket, Key="in/c.csv",
                      Body=b"text,label\nshared row number 0 is here,a\nbad,row,extra\nthree more words,b\n")
    doc = {**DOC, "sources": [{"s3": {"name": "s3", "url": f"s3://{bucket}/in/",
                                      "endpoint_url": s3_endpoint, "region": "us-east-1"}}]}
    local, ray = run_both(doc)
    assert _pieces(ray) == [3]
    assert ray.manifest["sources"][0]["rejected"] == 5
    assert set(ray.manifest["sources"][0]["stats"]["files"]) == {f"s3://{bucket}/in/{k}" for k in
                                                                ("a.jsonl", "b.jsonl.gz", "c.csv")}


def _ticket_rows():
    return [(i * 5 + (i % 4), None if i % 11 == 5 else f"ticket body {i % 17} with words", "xy"[i % 2])
            for i in range(120)]


@pytest.mark.slow
def test_postgres_key_ranges(run_both):
    """The same on PostgreSQL (server-side cursors per range; NULLs sort last there, but the
    primary key has none)."""
    import os

    url = os.environ.get("CURATE_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CURATE_REQUIRE_SERVICES") == "1":      # CI: a missing server fails
            pytest.fail("CURATE_TEST_POSTGRES_URL is not set but CURATE_REQUIRE_SERVICES=1")
        pytest.skip("CURATE_TEST_POSTGRES_URL is not set")
    import sqlalchemy as sa
    table = f"ray_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    rows = _ticket_rows()
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (pk INTEGER PRIMARY KEY, body TEXT, tag TEXT)"))
        conn.execute(sa.text(f"INSERT INTO {table} VALUES (:a, :b, :c)"),
                     [{"a": a, "b": b, "c": c} for a, b, c in rows])
    try:
        doc = {**DOC, "sources": [{"sql": {"name": "db", "url": url, "table": table, "text": "body",
                                           "chunk_size": 25}}]}
        local, ray = run_both(doc)
        assert _pieces(ray)[0] >= 2
        assert ray.manifest["sources"][0]["rejected"] == sum(r[1] is None for r in rows)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))
        engine.dispose()


def test_sqlite_key_ranges(run_both, tmp_path):
    """A SQLite table read as ranges of its integer primary key (gaps in the key, repeated texts,
    NULL texts quarantined with their pk locator)."""
    db = tmp_path / "t.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (pk INTEGER PRIMARY KEY, body TEXT, tag TEXT)")
    rows = _ticket_rows()
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    con.commit()
    con.close()
    doc = {**DOC, "sources": [{"sql": {"name": "db", "url": str(db), "table": "t", "text": "body",
                                       "chunk_size": 25}}]}
    local, ray = run_both(doc)
    assert _pieces(ray)[0] >= 2
    m = ray.manifest["sources"][0]
    assert m["rejected"] == sum(r[1] is None for r in rows) and m["rows"] == 120 - m["rejected"]
    assert local.manifest["sources"][0]["fingerprint"] == m["fingerprint"]   # same content fingerprint


def test_piece_errors_are_the_local_errors(tmp_path, ray_cluster):
    """A mapping error and a strict source's first malformed line, met by read tasks, raise the
    local engine's errors (the driver reads the source itself to raise them)."""
    from curate.errors import DataError
    from curate.pipeline import Pipeline
    folder = _jsonl_parts(tmp_path / "in", [_rows(k, 12) for k in range(3)])
    for extra in ({"text": "nope"}, {"strict": True}):
        msgs = []
        for ex in ("local", "ray"):
            p = Pipeline(name="err", sources=[{"jsonl": {"path": f"{folder}/*.jsonl", **extra}}],
                         steps=[{"clean": {"min_words": 1}}], executor=ex,
                         workdir=str(tmp_path / ex / "w"), out_dir=str(tmp_path / ex / "out"))
            with pytest.raises(DataError) as e:
                p.run()
            msgs.append(str(e.value))
        assert msgs[0] == msgs[1] and ("'nope'" in msgs[0] or "strict" in msgs[0]), msgs
