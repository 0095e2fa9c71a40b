"""Fixtures for the Ray executor tests: one local Ray (2 CPUs, loopback) for the whole session,
a generated corpus, and a helper that runs one pipeline file on the local engine and on Ray and
compares everything the two wrote."""
from __future__ import annotations

from pathlib import Path

import pytest

from curate.pipeline import load_yaml

from ._helpers import assert_same_run, make_corpus, write_pipeline


@pytest.fixture(scope="session")
def ray_cluster(s3_endpoint):
    """A local Ray with 2 CPUs, no dashboard, started once and stopped at the end of the session;
    yields its GCS address (127.0.0.1) for subprocesses that join it. Started after the moto S3
    server, so its workers have the server's dummy credentials in their environment."""
    import os
    ray = pytest.importorskip("ray", reason="the [ray] extra (ray[data]) is part of [dev]")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning",
                 _node_ip_address="127.0.0.1")
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))



@pytest.fixture
def run_both(tmp_path, ray_cluster):
    """Run ``doc`` (a pipeline dict with ``{out}``/``{data}`` placeholders) locally and on Ray;
    returns (local result, ray result) after checking they agree."""
    def run(doc: dict, check: bool = True, **extra):
        local = load_yaml(write_pipeline(doc, tmp_path / "local", "local", **extra)).run()
        ray = load_yaml(write_pipeline(doc, tmp_path / "ray", "ray", **extra)).run()
        if check:
            assert_same_run(local, ray)
        return local, ray
    return run
