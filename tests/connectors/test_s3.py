"""The s3 source and sink against moto's S3 server (real boto3 over HTTP on loopback), plus a
fault endpoint for AccessDenied and throttling."""
from __future__ import annotations

import gzip
import io
import json

import polars as pl
import pytest

from curate.connectors.s3 import S3RangeFile, S3Sink, S3Source, glob_regex
from curate import Pipeline
from curate.errors import CurateError, DataError


def read(**cfg):
    src = S3Source(**cfg)
    batches = list(src.read())
    rows = [b.rows for b in batches if b.rows.height]
    rej = [b.rejected for b in batches if b.rejected.height]
    return (pl.concat(rows, how="diagonal_relaxed") if rows else pl.DataFrame(),
            pl.concat(rej, how="diagonal_relaxed") if rej else pl.DataFrame(), len(batches))


def put(client, bucket, key, body: bytes):
    client.put_object(Bucket=bucket, Key=key, Body=body)


def parquet_bytes(df: pl.DataFrame, row_group_size: int | None = None) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf, row_group_size=row_group_size)
    return buf.getvalue()


def test_glob_reads_csv_jsonl_gz_and_parquet_with_locators(s3, s3_endpoint):
    client, bucket = s3
    put(client, bucket, "data/a.csv", b"text,label\nfirst,x\nbad,row,extra\nthird,y\n")
    put(client, bucket, "data/sub/b.jsonl.gz", gzip.compress(b'{"text": "j1", "label": "y"}\n{not json\n'
                                                            b'{"text": "j3", "label": "x"}\n'))
    put(client, bucket, "data/sub/c.parquet", parquet_bytes(pl.DataFrame({"text": ["p1", "p2"], "label": ["x", "y"]})))
    put(client, bucket, "data/readme.md", b"# not data")
    put(client, bucket, "other/z.csv", b"text\nnope\n")
    rows, rej, _ = read(url=f"s3://{bucket}/data/**", endpoint_url=s3_endpoint)
    assert sorted(rows["text"].to_list()) == ["first", "j1", "j3", "p1", "p2", "third"]
    assert set(rows["source"]) >= {f"s3://{bucket}/data/a.csv:2", f"s3://{bucket}/data/sub/b.jsonl.gz:3",
                                   f"s3://{bucket}/data/sub/c.parquet:0"}
    reasons = dict(zip(rej["source"], rej["reason"]))
    assert reasons[f"s3://{bucket}/data/a.csv:3"] == "wrong_field_count"
    assert f"s3://{bucket}/data/sub/b.jsonl.gz:2" in reasons
    assert reasons[f"s3://{bucket}/data/readme.md"] == "unknown_format"      # quarantined, not dropped


def test_single_segment_glob_and_prefix(s3, s3_endpoint):
    client, bucket = s3
    for k in ("logs/2026/a.jsonl", "logs/2026/b.jsonl", "logs/2026/deep/c.jsonl", "logs/2025/d.jsonl"):
        put(client, bucket, k, json.dumps({"text": k}).encode() + b"\n")
    rows, _, _ = read(url=f"s3://{bucket}/logs/2026/*.jsonl", endpoint_url=s3_endpoint)
    assert sorted(rows["text"]) == ["logs/2026/a.jsonl", "logs/2026/b.jsonl"]
    rows, _, _ = read(url=f"s3://{bucket}/logs/2026", endpoint_url=s3_endpoint)   # a prefix, no glob
    assert rows.height == 3
    rows, _, _ = read(url=f"s3://{bucket}/logs/202[5]/*.jsonl", endpoint_url=s3_endpoint)
    assert rows["text"].to_list() == ["logs/2025/d.jsonl"]


def test_large_csv_streams_in_batches(s3, s3_endpoint):
    client, bucket = s3
    n = 30_000
    body = "text,n\n" + "".join(f"row {i},{i}\n" for i in range(n))
    put(client, bucket, "big.csv", body.encode())
    rows, rej, n_batches = read(url=f"s3://{bucket}/big.csv", endpoint_url=s3_endpoint, batch_rows=4_000)
    assert rows.height == n and rej.height == 0 and n_batches == 8


def test_parquet_read_with_ranged_gets(s3, s3_endpoint):
    client, bucket = s3
    df = pl.DataFrame({"text": [f"t{i}" for i in range(5000)], "n": list(range(5000))})
    put(client, bucket, "x.parquet", parquet_bytes(df, row_group_size=1000))
    rows, _, n_batches = read(url=f"s3://{bucket}/x.parquet", endpoint_url=s3_endpoint, batch_rows=1000)
    assert rows.select("text", "n").equals(df) and n_batches == 5
    # the range file itself: seek/read semantics
    size = client.head_object(Bucket=bucket, Key="x.parquet")["ContentLength"]
    f = S3RangeFile(client, bucket, "x.parquet", size)
    f.seek(-4, io.SEEK_END)
    assert f.read(4) == b"PAR1" and f.tell() == size and f.read(10) == b""


def test_no_such_bucket(s3_endpoint):
    with pytest.raises(DataError, match="NoSuchBucket.*does not exist"):
        read(url="s3://no-such-bucket-xyz/data/*.csv", endpoint_url=s3_endpoint)
    with pytest.raises(DataError, match="NoSuchBucket"):
        read(url="s3://no-such-bucket-xyz/data/x.csv", endpoint_url=s3_endpoint)


def test_no_such_key_and_empty_match(s3, s3_endpoint):
    client, bucket = s3
    with pytest.raises(DataError, match="NoSuchKey: no object 'missing.csv'"):
        read(url=f"s3://{bucket}/missing.csv", endpoint_url=s3_endpoint)
    with pytest.raises(DataError, match="no objects match"):
        read(url=f"s3://{bucket}/none/*.csv", endpoint_url=s3_endpoint)
    rows, _, _ = read(url=f"s3://{bucket}/none/*.csv", endpoint_url=s3_endpoint, allow_empty=True)
    assert rows.height == 0


def test_unknown_format_named(s3, s3_endpoint):
    client, bucket = s3
    put(client, bucket, "dump.dat", b"a,b\n1,2\n")
    with pytest.raises(DataError, match="cannot tell the format of 'dump.dat'"):
        read(url=f"s3://{bucket}/dump.dat", endpoint_url=s3_endpoint)
    rows, _, _ = read(url=f"s3://{bucket}/dump.dat", endpoint_url=s3_endpoint, format="csv")
    assert rows["a"].to_list() == ["1"]


def test_bad_url_and_options():
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="not an S3 URL"):
        S3Source(url="http://bucket/x.csv")


def test_unreachable_endpoint():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="cannot reach the S3 endpoint"):
        read(url="s3://b/x.csv", endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)


def test_access_denied_is_clear(fake_s3):
    fake_s3.reset(error=(403, "AccessDenied"))
    with pytest.raises(DataError, match=r"AccessDenied \(HTTP 403\): access denied"):
        read(url="s3://b/data/*.csv", endpoint_url=fake_s3.base, max_attempts=1)


@pytest.mark.slow
def test_throttling_is_retried(fake_s3):
    fake_s3.reset(fail_first=2)
    rows, _, _ = read(url="s3://b/data/*.csv", endpoint_url=fake_s3.base, retry_mode="standard", max_attempts=4)
    assert rows["text"].to_list() == ["hello", "world"]
    assert len(fake_s3.requests) == 4               # 2 throttled + LIST + GET
    fake_s3.reset(fail_first=100)
    with pytest.raises(DataError, match="SlowDown"):
        read(url="s3://b/data/*.csv", endpoint_url=fake_s3.base, retry_mode="standard", max_attempts=2)


def test_sink_roundtrip_jsonl_gz_and_parquet(s3, s3_endpoint):
    client, bucket = s3
    df = pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "tags": [["p"], []]})
    S3Sink(url=f"s3://{bucket}/out/data.jsonl.gz", endpoint_url=s3_endpoint).write(df, 0)
    body = gzip.decompress(client.get_object(Bucket=bucket, Key="out/data.jsonl.gz")["Body"].read())
    assert [json.loads(x) for x in body.splitlines()] == df.to_dicts()
    S3Sink(url=f"s3://{bucket}/out/data.parquet", endpoint_url=s3_endpoint).write(df, 0)
    rows, _, _ = read(url=f"s3://{bucket}/out/data.parquet", endpoint_url=s3_endpoint)
    assert rows.select(df.columns).equals(df)
    with pytest.raises(CurateError, match="format"):
        S3Sink(url=f"s3://{bucket}/out/data.bin", endpoint_url=s3_endpoint).write(df, 0)


@pytest.mark.slow
def test_sink_multipart_upload(s3, s3_endpoint):
    client, bucket = s3
    df = pl.DataFrame({"text": ["x" * 100 + str(i) for i in range(110_000)]})   # ~12 MB of JSONL
    S3Sink(url=f"s3://{bucket}/big.jsonl", endpoint_url=s3_endpoint, multipart_threshold_mb=5,
           multipart_chunk_mb=5).write(df, 0)
    head = client.head_object(Bucket=bucket, Key="big.jsonl")
    assert head["ETag"].strip('"').endswith("-3")    # three parts
    rows, _, _ = read(url=f"s3://{bucket}/big.jsonl", endpoint_url=s3_endpoint)
    assert rows.height == 110_000


def test_pipeline_fingerprint_caches_until_object_changes(s3, s3_endpoint, tmp_path):
    client, bucket = s3
    put(client, bucket, "d.csv", b"text\none\ntwo\n")
    p = Pipeline(name="s3cache", sources=[{"s3": {"url": f"s3://{bucket}/d.csv", "endpoint_url": s3_endpoint}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    assert p.run().data().height == 2
    assert p.run().all_cached
    put(client, bucket, "d.csv", b"text\none\ntwo\nthree\n")
    again = Pipeline(name="s3cache", sources=[{"s3": {"url": f"s3://{bucket}/d.csv", "endpoint_url": s3_endpoint}}],
                     workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out")).run()
    assert not again.all_cached and again.data().height == 3


def test_glob_regex():
    r = glob_regex("a/**/b/*.csv")
    assert r.match("a/b/x.csv") and r.match("a/1/2/b/x.csv") and not r.match("a/b/c/x.csv")
    assert glob_regex("x/?.json").match("x/1.json") and not glob_regex("x/?.json").match("x/12.json")
    assert glob_regex("x/[!a]*").match("x/b") and not glob_regex("x/[!a]*").match("x/a")


@pytest.mark.parametrize("key", ["out/stream.jsonl.gz", "out/stream.csv", "out/stream.parquet"])
def test_sink_streams_the_final_table_part_by_part(s3, s3_endpoint, tmp_path, key):
    """Through the engine the s3 output writes the final table part by part to its temp file
    (the whole-table ``write`` is never called) and uploads the bytes one whole write gives."""
    from curate.sink import Sink
    client, bucket = s3
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"text": f"row {i}, \"q\"", "tags": [str(i % 3)]}) + "\n" for i in range(350)))
    p = Pipeline(name="s3stream", sources=[{"jsonl": {"path": str(src)}}], batch_size=100,
                 outputs=[{"s3": {"url": f"s3://{bucket}/{key}", "endpoint_url": s3_endpoint}}],
                 workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o"))
    mp = pytest.MonkeyPatch()
    mp.setattr(Sink, "write", lambda self, df, seed: pytest.fail("the whole-table path was used"))
    try:
        res = p.run()
    finally:
        mp.undo()
    assert next(r for r in res.reports if r.kind == "output").rows_in == 350
    streamed = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    from curate.connectors.files.outputs import write_format     # the one-frame bytes
    ref = tmp_path / key.rsplit("/", 1)[1]
    write_format(res.data(), key.split(".")[1], ref, gz=key.endswith(".gz"))
    whole = ref.read_bytes()
    if key.endswith(".parquet"):
        assert pl.read_parquet(io.BytesIO(streamed)).equals(pl.read_parquet(io.BytesIO(whole)))
    else:
        assert streamed == whole and len(streamed) > 1000
