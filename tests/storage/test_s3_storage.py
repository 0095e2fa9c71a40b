"""s3:// through the storage layer (s3fs) against moto's S3 server: the file sources read objects,
every file output writes them, and the bytes equal the local run's — including the s3 output's
(its formats are the file outputs'; only the upload is S3's own)."""
from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("s3fs", reason="the [s3] extra is part of [dev]")

from curate.pipeline import Pipeline  # noqa: E402

ROWS = [{"text": f"row number {i} has some words", "label": "ab"[i % 2]} for i in range(40)]
ROWS += [ROWS[0], {"text": "hi", "label": "a"}]                 # a duplicate and a too-short row


def _pipeline(base: str, src: str, opts: dict, workdir: Path, extra_outputs: list | None = None) -> Pipeline:
    so = {"storage_options": opts} if opts else {}
    return Pipeline(
        name="s3st", workdir=str(workdir), out_dir=str(workdir / "out"),
        sources=[{"jsonl": {"path": src, **so}}],
        steps=[{"clean": {"min_words": 3}}, {"dedup": {}}],
        outputs=[{"jsonl": {"path": f"{base}/rows.jsonl.gz", "columns": ["text", "label"], **so}},
                 {"parquet": {"path": f"{base}/rows.parquet", "columns": ["text", "label"], **so}},
                 {"csv": {"path": f"{base}/rows.csv.gz", "columns": ["text", "label"], **so}},
                 {"alpaca": {"path": f"{base}/alpaca.jsonl", "instruction_text": "Label it.",
                             "input": "text", "output": "label", **so}}] + (extra_outputs or []))


def test_s3_sources_and_outputs_match_local_bytes(tmp_path, bucket, s3_endpoint):
    name, client = bucket
    body = pl.DataFrame(ROWS).write_ndjson().encode()
    client.put_object(Bucket=name, Key="in/part-1.jsonl", Body=body)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-1.jsonl").write_bytes(body)
    opts = {"endpoint_url": s3_endpoint}

    local = _pipeline(str(tmp_path / "out"), str(tmp_path / "in" / "*.jsonl"), {}, tmp_path / "w1").run()
    remote = _pipeline(f"s3://{name}/out", f"s3://{name}/in/*.jsonl", opts, tmp_path / "w2", extra_outputs=[
        {"s3": {"url": f"s3://{name}/via-sink/rows.jsonl.gz", "endpoint_url": s3_endpoint,
                "columns": ["text", "label"]}}]).run()

    assert local.to_polars().height == remote.to_polars().height == 40
    for f in local.outputs:
        key = f"out/{Path(f).name}"
        got = client.get_object(Bucket=name, Key=key)["Body"].read()
        assert got == Path(f).read_bytes(), key
    # the s3 output writes the same bytes as the jsonl output (fixed gzip header, no mtime)
    via_sink = client.get_object(Bucket=name, Key="via-sink/rows.jsonl.gz")["Body"].read()
    assert via_sink == (tmp_path / "out" / "rows.jsonl.gz").read_bytes()
    assert gzip.decompress(via_sink).count(b"\n") == 40
    # manifest paths keep the URL; a rerun keeps the unchanged objects
    paths = [f["path"] for o in remote.manifest["outputs"] for f in o["files"]]
    assert f"s3://{name}/out/rows.parquet" in paths
    again = _pipeline(f"s3://{name}/out", f"s3://{name}/in/*.jsonl", opts, tmp_path / "w2").run()
    assert again.all_cached
    assert all(r.cached for r in again.reports if r.kind == "output")


def test_missing_bucket_names_the_url(tmp_path, s3_endpoint):
    from curate.errors import DataError
    with pytest.raises(DataError, match="s3://no-such-bucket-xyz/in"):
        _pipeline(str(tmp_path / "o"), "s3://no-such-bucket-xyz/in/*.jsonl",
                  {"endpoint_url": s3_endpoint}, tmp_path / "w").run()


def test_output_to_a_missing_bucket_is_a_clear_error(tmp_path, s3_endpoint):
    from curate.errors import CurateError
    (tmp_path / "in.jsonl").write_text('{"text": "one two three four"}\n')
    p = Pipeline(name="nb", workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o"),
                 sources=[{"jsonl": {"path": str(tmp_path / "in.jsonl")}}],
                 outputs=[{"jsonl": {"path": "s3://no-such-bucket-out-xyz/x/rows.jsonl",
                                     "storage_options": {"endpoint_url": s3_endpoint}}}])
    with pytest.raises(CurateError, match="s3://no-such-bucket-out-xyz/x/rows.jsonl"):
        p.run()
