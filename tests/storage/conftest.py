"""Storage fixtures: a fresh ``memory://`` root per test and moto's S3 server on loopback."""
from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def mem():
    """A unique ``memory://`` folder (fsspec's in-process store), removed afterwards."""
    import fsspec
    root = f"memory://t-{uuid.uuid4().hex[:10]}"
    yield root
    fs = fsspec.filesystem("memory")
    path = root[len("memory://"):]
    if fs.exists("/" + path):
        fs.rm("/" + path, recursive=True)


@pytest.fixture
def bucket(s3_endpoint):
    """A fresh bucket on the moto server; yields (name, boto3 client)."""
    import boto3
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    name = f"st-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    yield name, client
