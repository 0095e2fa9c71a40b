"""S3 (and S3-compatible stores) through boto3: an ``s3`` source reading every object that matches
``s3://bucket/prefix/*.csv``-style globs, and an ``s3`` output (multipart upload for large files).

CSV/TSV/JSON/JSONL objects (optionally .gz) are parsed straight from ``get_object()['Body']``,
botocore's file-like StreamingBody, with the shared streaming parsers of
:mod:`curate.connectors._textio`, so memory stays bounded by one batch whatever the object size.
Parquet needs random access (its footer sits at the end), so it is read through
:class:`S3RangeFile`, a seekable file that issues ranged GETs: no whole-object read, no
temp file, and the same boto3 client (credentials chain, endpoint, retries) as every other object
— pyarrow's own S3FileSystem would bring a second credentials chain and retry policy.

    sources:
      - s3: {url: "s3://corp-data/tickets/2024/**/*.jsonl.gz", text: body, label: tag}
      - s3: {url: "s3://bucket/exports/", endpoint_url: "http://minio:9000", format: csv,
             options: {delimiter: ";"}}
    outputs:
      - s3: {url: "s3://corp-data/curated/tickets.parquet"}
"""
from __future__ import annotations

import functools
import io
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator, Literal

import polars as pl
from pydantic import Field, field_validator

from curate.errors import CurateError, DataError
from curate.registry import register_output, register_source
from curate.sink import Sink, SinkConfig
from curate.source import Source, SourceBatch, SourceConfig, quarantine
from curate.extras import require

GLOB_CHARS = re.compile(r"[*?\[]")
FORMATS = ("csv", "tsv", "jsonl", "ndjson", "json", "parquet")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; a :class:`DataError` for anything else."""
    m = re.match(r"^s3://([^/]+)/?(.*)$", url.strip())
    if not m:
        raise DataError(f"{url!r} is not an S3 URL (expected s3://bucket/prefix/...)")
    return m.group(1), m.group(2)


def glob_regex(pattern: str) -> re.Pattern:
    """Glob over keys: ``*`` and ``?`` stay within one path segment, ``**`` crosses ``/``."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):         # "a/**/b" matches a/b, a/x/b, a/x/y/b
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out += re.escape(ch)
            else:
                body = pattern[i + 1:j]
                out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                i = j
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + r"\Z")


@functools.lru_cache(maxsize=16)
def s3_client(endpoint_url: str | None = None, region: str | None = None, profile: str | None = None,
              max_attempts: int = 8, retry_mode: str = "adaptive", timeout: float = 60.0):
    """A boto3 S3 client on the standard credentials chain (env, profile, SSO, instance role),
    retrying throttling and 5xx errors with botocore's ``standard``/``adaptive`` retry modes.
    Clients are thread-safe and costly to build (service model loading), so they are reused."""
    require("boto3", extra="s3")
    import boto3
    require("botocore", extra="s3")
    from botocore.config import Config
    session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
    cfg = Config(retries={"max_attempts": max_attempts, "mode": retry_mode},
                 connect_timeout=timeout, read_timeout=timeout,
                 s3={"addressing_style": "path"} if endpoint_url else None)
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=cfg)


def s3_error(exc: BaseException, what: str, endpoint_url: str | None = None) -> CurateError:
    """Translate botocore errors into messages that say what to check, credentials masked (an
    endpoint URL with userinfo, secret keys from the environment)."""
    from curate.io import mask_secrets, url_secrets
    err = _s3_error(exc, what)
    return type(err)(mask_secrets(str(err), url_secrets(endpoint_url)))


def _s3_error(exc: BaseException, what: str) -> CurateError:
    require("botocore", extra="s3")
    from botocore import exceptions as bx
    if isinstance(exc, bx.NoCredentialsError):
        return CurateError(f"{what}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) before running")
    if isinstance(exc, bx.EndpointConnectionError):
        return DataError(f"{what}: cannot reach the S3 endpoint ({exc}); check endpoint_url and network")
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "?"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        hint = {
            "NoSuchBucket": "the bucket does not exist (check the name, endpoint_url and region)",
            "NoSuchKey": "no object with this key",
            "404": "no object with this key",
            "AccessDenied": "access denied: the credentials in use lack permission (s3:ListBucket / s3:GetObject)",
            "403": "access denied: the credentials in use lack permission",
            "InvalidAccessKeyId": "the access key id is not known to this endpoint",
            "SignatureDoesNotMatch": "the secret key does not match the access key id",
            "SlowDown": "throttled by S3 even after retries; lower concurrency or raise max_attempts",
        }.get(code, err.get("Message") or "request failed")
        return DataError(f"{what}: {code}{f' (HTTP {status})' if status else ''}: {hint}")
    return DataError(f"{what}: {type(exc).__name__}: {exc}")


class S3RangeFile(io.RawIOBase):
    """A read-only, seekable file over one S3 object: each read is a ranged GET (for Parquet)."""

    def __init__(self, client, bucket: str, key: str, size: int) -> None:
        self.client, self.bucket, self.key, self.size = client, bucket, key, size
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, b) -> int:
        if self.pos >= self.size or len(b) == 0:
            return 0
        end = min(self.size, self.pos + len(b)) - 1
        body = self.client.get_object(Bucket=self.bucket, Key=self.key,
                                      Range=f"bytes={self.pos}-{end}")["Body"].read()
        n = len(body)
        b[:n] = body
        self.pos += n
        return n


class S3SourceConfig(SourceConfig):
    """Read CSV/TSV/JSON/JSONL/Parquet objects (optionally .gz) from S3."""

    url: str = Field(description="s3://bucket/prefix or a glob such as s3://bucket/logs/**/*.jsonl.gz.")
    format: Literal["auto", "csv", "tsv", "jsonl", "ndjson", "json", "parquet"] = Field(
        default="auto", description="Parser; `auto` picks it from each key's extension.")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Parser options (e.g. delimiter, header, encoding) as for the file sources.")
    endpoint_url: str | None = Field(default=None, description="For S3-compatible stores (MinIO, R2, moto).")
    region: str | None = Field(default=None, description="AWS region (default: from the environment/profile).")
    profile: str | None = Field(default=None, description="AWS profile name (default: the standard chain).")
    max_attempts: int = Field(default=8, ge=1, le=30, description="Attempts per request (throttling, 5xx).")
    retry_mode: Literal["standard", "adaptive"] = Field(default="adaptive",
                                                        description="botocore retry mode.")
    batch_rows: int = Field(default=50_000, ge=1, description="Rows per batch.")
    allow_empty: bool = Field(default=False, description="Read zero rows instead of failing when nothing matches.")

    @field_validator("url")
    @classmethod
    def _s3(cls, v: str) -> str:
        try:
            parse_s3_url(v)
        except DataError as e:
            raise ValueError(str(e)) from None
        return v


@register_source("s3")
class S3Source(Source):
    """Rows from S3 objects, streamed; locators ``s3://bucket/key:<line or row>``."""

    Config = S3SourceConfig

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._client = None
        self._objects: list[dict[str, Any]] | None = None

    @property
    def client(self):
        if self._client is None:
            c = self.config
            try:
                self._client = s3_client(c.endpoint_url, c.region, c.profile, c.max_attempts, c.retry_mode)
            except ValueError as e:          # botocore: "Invalid endpoint: <the URL, userinfo and all>"
                from curate.io import mask_secrets
                from curate.io import url_secrets
                raise DataError(mask_secrets(f"source {self.origin}: cannot use endpoint_url "
                                             f"{c.endpoint_url}: {e}", url_secrets(c.endpoint_url))) from None
        return self._client

    def describe(self) -> str:
        from curate.io import mask_url
        c = self.config
        return f"{self.origin} ({c.url}" + (f" at {mask_url(c.endpoint_url)})" if c.endpoint_url else ")")

    def objects(self) -> list[dict[str, Any]]:
        """Matching objects (Key, Size, ETag), sorted by key; errors name the bucket and key."""
        if self._objects is not None:
            return self._objects
        require("botocore", extra="s3")
        from botocore.exceptions import BotoCoreError, ClientError
        c = self.config
        bucket, pattern = parse_s3_url(c.url)
        where = f"source {self.origin}: {c.url}"
        m = GLOB_CHARS.search(pattern)
        try:
            if m is None and pattern and not pattern.endswith("/"):
                try:
                    head = self.client.head_object(Bucket=bucket, Key=pattern)
                    found = [{"Key": pattern, "Size": head["ContentLength"], "ETag": head.get("ETag")}]
                except ClientError as e:
                    if str(e.response.get("Error", {}).get("Code")) not in ("404", "NoSuchKey"):
                        raise
                    found = self._list(bucket, pattern + "/", None)
                    if not found:
                        self.client.head_bucket(Bucket=bucket)   # NoSuchBucket beats NoSuchKey
                        raise DataError(f"{where}: NoSuchKey: no object {pattern!r} in bucket {bucket!r} "
                                        "(and no objects under it as a prefix)") from None
            else:
                prefix = pattern[:m.start()] if m else pattern
                found = self._list(bucket, prefix, glob_regex(pattern) if m else None)
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) == "404":   # head_bucket says 404
                raise DataError(f"{where}: NoSuchBucket: the bucket does not exist (check the name, "
                                "endpoint_url and region)") from None
            raise s3_error(e, where, c.endpoint_url) from None
        except BotoCoreError as e:
            raise s3_error(e, where, c.endpoint_url) from None
        if c.format == "auto":
            from curate.connectors._textio import format_for
            unknown = [o["Key"] for o in found if format_for(o["Key"]) is None]
            if unknown and len(found) == 1 and m is None:
                raise DataError(f"{where}: cannot tell the format of {unknown[0]!r} from its name; "
                                f"set format: (one of {', '.join(FORMATS)})")
            # other unknown objects under a glob/prefix are quarantined in read(), not dropped
        if not found and not c.allow_empty:
            raise DataError(f"{where}: no objects match (set allow_empty: true to allow an empty read)")
        self._objects = sorted(found, key=lambda o: o["Key"])
        return self._objects

    def _list(self, bucket: str, prefix: str, rx: re.Pattern | None) -> list[dict[str, Any]]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                if o["Key"].endswith("/"):
                    continue
                if rx is None or rx.match(o["Key"]):
                    out.append({"Key": o["Key"], "Size": o["Size"], "ETag": o.get("ETag")})
        return out

    def fingerprint(self) -> str | None:
        """Keys, sizes and ETags of the matching objects (one LIST call): unchanged → cached."""
        import hashlib
        import json
        objs = self.objects()
        return hashlib.sha256(json.dumps([[o["Key"], o["Size"], o["ETag"]] for o in objs]).encode()).hexdigest()[:20]

    def read(self) -> Iterator[SourceBatch]:
        require("botocore", extra="s3")
        from botocore.exceptions import BotoCoreError, ClientError

        from curate.connectors._textio import OPTIONS, format_for, iter_format
        c = self.config
        bucket, _ = parse_s3_url(c.url)
        for obj in self.objects():
            key = obj["Key"]
            fmt = c.format if c.format != "auto" else format_for(key)
            locator = f"s3://{bucket}/{key}"
            if fmt is None:
                yield SourceBatch(pl.DataFrame(), quarantine(
                    [locator], ["unknown_format"],
                    [f"cannot tell the format from the name; set format: (one of {', '.join(FORMATS)})"],
                    self.origin))
                continue
            try:
                options = OPTIONS[fmt](**c.options)
            except Exception as e:  # noqa: BLE001 - pydantic error: name the option
                raise DataError(f"source {self.origin}: options for {fmt} are invalid: {e}") from None
            info = self.stats.setdefault("files", {}).setdefault(locator, {})   # encoding etc.
            try:
                if fmt == "parquet":
                    if key.lower().endswith(".gz"):
                        raise DataError(f"{locator}: gzip-compressed Parquet is not supported "
                                        "(Parquet compresses internally)")
                    raw = io.BufferedReader(S3RangeFile(self.client, bucket, key, obj["Size"]),
                                            buffer_size=1 << 20)
                    yield from iter_format(fmt, raw, locator, options, self.origin, batch_rows=c.batch_rows,
                                           info=info)
                else:
                    body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
                    try:
                        yield from iter_format(fmt, body, locator, options, self.origin,
                                               batch_rows=c.batch_rows, info=info)
                    finally:
                        body.close()
            except (ClientError, BotoCoreError) as e:
                raise s3_error(e, f"source {self.origin}: {locator}", self.config.endpoint_url) from None


# ------------------------------------------------------------------------------------ the sink
class S3SinkConfig(SinkConfig):
    """Write the final rows as one object (JSONL, CSV or Parquet; .gz for JSONL/CSV)."""

    url: str = Field(description="s3://bucket/key.jsonl (or .csv, .parquet, .jsonl.gz, .csv.gz).")
    format: Literal["auto", "jsonl", "csv", "parquet"] = Field(default="auto", description="`auto`: from the key.")
    endpoint_url: str | None = Field(default=None, description="For S3-compatible stores.")
    region: str | None = Field(default=None, description="AWS region (default: from the environment/profile).")
    profile: str | None = Field(default=None, description="AWS profile name (default: the standard chain).")
    max_attempts: int = Field(default=8, ge=1, le=30, description="Attempts per request (throttling, 5xx).")
    multipart_threshold_mb: int = Field(default=64, ge=5, description="Files larger than this use multipart upload.")
    multipart_chunk_mb: int = Field(default=16, ge=5, description="Part size for multipart uploads (S3 minimum 5).")
    columns: list[str] | None = Field(default=None, description="Columns to write (default all).")

    @field_validator("url")
    @classmethod
    def _s3(cls, v: str) -> str:
        try:
            _, key = parse_s3_url(v)
        except DataError as e:
            raise ValueError(str(e)) from None
        if not key or key.endswith("/"):
            raise ValueError("url must name an object key, e.g. s3://bucket/out/data.jsonl")
        return v


@register_output("s3")
class S3Sink(Sink):
    """Upload the curated table as one object; the object appears only when the upload completes
    (S3 PUT / CompleteMultipartUpload are atomic), so readers never see a partial file."""

    Config = S3SinkConfig

    def targets(self) -> list[Path]:
        return []  # a remote object, not a local path

    def describe(self) -> str:
        return f"s3 → {self.config.url}"

    def _format(self) -> tuple[str, bool]:
        c = self.config
        _, key = parse_s3_url(c.url)
        gz = key.lower().endswith(".gz")
        if c.format != "auto":
            return c.format, gz
        base = key[:-3] if gz else key
        ext = base.rsplit(".", 1)[-1].lower()
        fmt = {"jsonl": "jsonl", "ndjson": "jsonl", "csv": "csv", "parquet": "parquet", "pq": "parquet"}.get(ext)
        if fmt is None:
            raise CurateError(f"output s3: cannot tell the format from {key!r}; set format: jsonl|csv|parquet")
        return fmt, gz

    def write(self, df: pl.DataFrame, seed: int) -> list[Path]:
        return self.write_stream(iter([df]), seed)[0]

    def streams(self, columns: list[str]) -> bool:
        """The object is written part by part to a local temp file, then uploaded."""
        return True

    def write_stream(self, frames, seed: int) -> tuple[list[Path], int]:
        require("boto3", extra="s3")
        from boto3.s3.transfer import TransferConfig
        require("botocore", extra="s3")
        from botocore.exceptions import BotoCoreError, ClientError
        c = self.config
        fmt, gz = self._format()
        if fmt == "parquet" and gz:
            raise CurateError("output s3: Parquet is compressed internally; drop the .gz")
        bucket, key = parse_s3_url(c.url)
        rows = 0
        with tempfile.TemporaryDirectory(prefix="curate-s3-") as tmp:
            # the same bytes as the jsonl/csv/parquet file outputs (fixed gzip header), written
            # part by part: only the upload below (multipart, boto3 retries and errors) is S3's own
            from curate.connectors.files.outputs import PartWriter
            path = Path(tmp) / ("data.gz" if gz else "data")
            with PartWriter(fmt, path, (lambda df: df.select(c.columns)) if c.columns else None) as w:
                first = None
                for df in frames:
                    first = df if first is None else first
                    if df.height:
                        w.write(df)
                if not w.rows:                # no rows: the empty object a whole write gives
                    w.write(first if first is not None else pl.DataFrame())
                rows = w.rows
            mb = 1024 * 1024
            tcfg = TransferConfig(multipart_threshold=c.multipart_threshold_mb * mb,
                                  multipart_chunksize=c.multipart_chunk_mb * mb)
            try:
                client = s3_client(c.endpoint_url, c.region, c.profile, c.max_attempts)
                client.upload_file(str(path), bucket, key, Config=tcfg)
            except (ClientError, BotoCoreError) as e:
                raise s3_error(e, f"output s3: {c.url}", c.endpoint_url) from None
            except Exception as e:  # noqa: BLE001 - boto3's S3UploadFailedError wraps ClientError
                from curate.io import mask_secrets
                from curate.io import url_secrets
                raise CurateError(mask_secrets(f"output s3: {c.url}: upload failed: {e}",
                                               url_secrets(c.endpoint_url))) from None
        return [], rows
