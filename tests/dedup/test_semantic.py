"""Semantic dedup: paraphrases caught with the real offline MiniLM model; unrelated rows spared;
k-means bucketed search finds the same pairs as all-pairs on precomputed vectors."""
from __future__ import annotations

import numpy as np
import pytest

from curate.steps.dedup.semantic import SemanticConfig, cosine_pairs
from curate.steps.dedup.step import Dedup


@pytest.mark.slow
def test_semantic_paraphrases_real_model(run_steps):
    rows = [{"text": "How do I reset my password?"},
            {"text": "How can I reset my password?"},
            {"text": "What is the capital of France?"},
            {"text": "Which city is the capital of France?"},
            {"text": "I love eating pizza on Fridays."},
            {"text": "The stock market fell sharply today."}]
    res = run_steps(rows, [Dedup(exact=False, semantic={"threshold": 0.85})])
    rej = res.rejects()
    assert sorted(rej["text"]) == ["How can I reset my password?", "Which city is the capital of France?"]
    assert set(rej["reason"]) == {"semantic_duplicate"}
    assert (rej["similarity"] >= 0.85).all()
    kept = dict(zip(res.data()["id"], res.data()["text"]))
    assert {kept[i] for i in rej["duplicate_of"]} == {"How do I reset my password?",
                                                      "What is the capital of France?"}
    assert all("cosine" in d for d in rej["detail"])


def _vectors(n: int = 6000, dim: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, dim)).astype(np.float32)
    e[1::3] = e[0::3] + 0.08 * rng.normal(size=e[0::3].shape)      # a near twin for every third row
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_bucketed_search_matches_all_pairs():
    e = _vectors()
    la, ra, ia = cosine_pairs(e, SemanticConfig(threshold=0.97), 0)
    lb, rb, ib = cosine_pairs(e, SemanticConfig(threshold=0.97, buckets=12, probes=3), 0)
    assert ia["search"] == "all_pairs" and ib["search"] == "kmeans_buckets"
    a, b = set(zip(la.tolist(), ra.tolist())), set(zip(lb.tolist(), rb.tolist()))
    assert len(a) >= 1900 and b <= a and len(b) >= 0.97 * len(a)
    sims = np.einsum("ij,ij->i", e[lb], e[rb])
    assert (sims >= 0.97 - 1e-6).all()


def test_semantic_with_embedding_column(run_steps):
    e = _vectors(30, 8, seed=2)
    rows = [{"text": f"row {i}", "vec": e[i].tolist()} for i in range(30)]
    res = run_steps(rows, [Dedup(exact=False, semantic={"threshold": 0.97, "embedding_column": "vec"})])
    assert res.rejects().height == 10
    assert set(res.rejects()["text"]) == {f"row {i}" for i in range(1, 30, 3)}
