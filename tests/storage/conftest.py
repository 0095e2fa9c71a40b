"""Storage fixtures: a fresh ``memory://`` root per test and moto's S3 server on loopback."""
from __future__ import annotations

import os
import socket
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on 127.0.0.1 with dummy credentials in the environment."""
    from moto.server import ThreadedMotoServer
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_SESSION_TOKEN", None)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def bucket(s3_endpoint):
    """A fresh bucket on the moto server; yields (name, boto3 client)."""
    import boto3
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    name = f"st-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    yield name, client
