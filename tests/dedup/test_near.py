"""MinHash-LSH near dedup: planted pairs around the threshold, transitive clusters, keep
policies, explanations, both signature backends, through the engine."""
from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from curate.steps.dedup import minhash as M
from curate.steps.dedup.step import Dedup

from ._planted import jaccard, variant, words

BACKENDS = ["oph", "numpy"] + (["rensa"] if M.have_rensa() else [])


def planted(seed: int = 7):
    """Unrelated base docs of 100 words plus copies at 1..12 edits (J from ~0.9 down to ~0.3)."""
    rng = random.Random(seed)
    rows, pairs = [], []
    for e in range(0, 13):
        for rep in range(4):
            base = words(rng, 100)
            rows.append({"text": " ".join(base)})
            copy = " ".join(variant(rng, base, e + 1))
            rows.append({"text": copy})
            pairs.append((len(rows) - 2, len(rows) - 1, jaccard(rows[-2]["text"], copy)))
    for _ in range(40):
        rows.append({"text": " ".join(words(rng, 60))})
    return rows, pairs


@pytest.mark.parametrize("backend", BACKENDS)
def test_planted_pairs_found_around_threshold(run_steps, backend):
    rows, pairs = planted()
    res = run_steps(rows, [Dedup(exact=False, near={"threshold": 0.8, "backend": backend})], name=backend)
    kept = set(res.data()["text"])
    rej = res.rejects()
    assert set(rej["reason"]) == {"near_duplicate"}
    found = {r: True for r in rej["text"]}
    for a, b, j in pairs:
        dup = rows[b]["text"] in found
        assert rows[a]["text"] in kept
        if j >= 0.86:                      # well above the threshold: LSH recall ~1
            assert dup, f"pair with J={j:.2f} missed"
        if j < 0.8:                        # verified by true Jaccard: never a false positive
            assert not dup, f"pair with J={j:.2f} wrongly removed"
    # explanation: kept id + the true Jaccard to it
    by_id = dict(zip(res.data()["id"], res.data()["text"]))
    for r in rej.iter_rows(named=True):
        assert r["similarity"] == pytest.approx(jaccard(by_id[r["duplicate_of"]], r["text"]), abs=1e-3)
        assert r["duplicate_of"] in r["detail"] and "Jaccard" in r["detail"]
    st = res.manifest["steps"][0]["stats"]["near"]
    assert st["duplicates"] == rej.height and st["backend"] == backend


def test_chain_clusters_are_transitive(run_steps):
    rng = random.Random(3)

    def edit(doc, *positions):
        out = list(doc)
        for p in positions:
            out[p] = f"edit{p}"
        return out
    a = words(rng, 200)
    b = edit(a, 20)
    c = edit(b, 60)
    d = edit(c, 100, 140)
    texts = [" ".join(t) for t in (a, b, c, d)]
    cfg = {"exact": False, "near": {"threshold": 0.9, "verify": "jaccard", "bands": 32, "rows": 4}}
    assert jaccard(texts[0], texts[3]) < 0.9 <= min(jaccard(texts[i], texts[i + 1]) for i in range(3))
    res = run_steps([{"text": t} for t in texts], [{"dedup": cfg}])
    assert res.data()["text"].to_list() == [texts[0]]
    rej = res.rejects()
    assert rej.height == 3
    assert set(rej["duplicate_of"]) == set(res.data()["id"])
    assert "cluster of 4" in rej["detail"][0]
    assert res.manifest["steps"][0]["stats"]["clusters"] == 1


def test_keep_longest_and_score(run_steps):
    rng = random.Random(5)
    base = words(rng, 80)
    longer = base + ["extra"]
    rows = [{"text": " ".join(base), "q": 0.1}, {"text": " ".join(longer), "q": 0.0},
            {"text": " ".join(variant(rng, base, 1)), "q": 0.9}]
    near = {"threshold": 0.8, "bands": 32, "rows": 4}
    res = run_steps(rows, [Dedup(exact=False, near=near, keep="longest")], name="long")
    assert res.data()["text"].to_list() == [rows[1]["text"]]
    res = run_steps(rows, [Dedup(exact=False, near=near, keep="score", score_column="q")], name="score")
    assert res.data()["text"].to_list() == [rows[2]["text"]]


def test_exact_then_near_accounting(run_steps):
    rng = random.Random(11)
    base = words(rng, 100)
    rows = [{"text": " ".join(base)}, {"text": " ".join(base).upper()},
            {"text": " ".join(variant(rng, base, 1))}, {"text": " ".join(words(rng, 50))}]
    res = run_steps(rows, [Dedup(near={"threshold": 0.8, "bands": 32, "rows": 4})])
    rej = res.rejects()
    assert sorted(rej["reason"]) == ["exact_duplicate", "near_duplicate"]
    assert res.data().height == 2
    st = res.manifest["steps"][0]["stats"]
    assert st["duplicates"] == 2 and st["exact"]["duplicates"] == 1 and st["near"]["duplicates"] == 1


@pytest.mark.parametrize("verify", ["signature", "none"])
def test_signature_verification_modes(run_steps, verify):
    rows, pairs = planted(seed=9)
    res = run_steps(rows, [Dedup(exact=False, near={"threshold": 0.8, "verify": verify})], name=verify)
    removed = set(res.rejects()["text"])
    hits = [rows[b]["text"] in removed for a, b, j in pairs if j >= 0.9]
    far = [rows[b]["text"] in removed for a, b, j in pairs if j < 0.45]
    assert all(hits) and not any(far)


def test_char_shingles_catch_typos(run_steps):
    rows = [{"text": "Please reset the password for my account today"},
            {"text": "Please reset teh password for my acount today"},
            {"text": "Completely different sentence about the weather"}]
    res = run_steps(rows, [Dedup(exact=False, near={"unit": "char", "ngram": 3, "threshold": 0.5})])
    assert res.data()["text"].to_list() == [rows[0]["text"], rows[2]["text"]]


def test_shingles_and_layout():
    s = pl.Series(["a b c d e f", "a b", "", None])
    sh = M.shingle(s, 5, single_spaced=True)
    assert sh.counts.tolist() == [2, 1, 0, 0]
    sh2 = M.shingle(pl.Series(["a  b c\td e f"]), 5)         # regex tokeniser, same shingles
    assert np.array_equal(np.sort(sh2.hashes), np.sort(sh.hashes[:2]))
    b, r = M.NearConfig(threshold=0.8).layout()
    assert b * r <= 128 and 0.6 < (1 / b) ** (1 / r) < 0.9      # S-curve midpoint near 0.8
    assert M.NearConfig(bands=16, rows=8).layout() == (16, 8)
    with pytest.raises(Exception, match="exceeds"):
        M.NearConfig(bands=32, rows=8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_estimated_jaccard_tracks_true_jaccard(backend):
    rng = random.Random(1)
    base = words(rng, 200)
    docs = [" ".join(base)] + [" ".join(variant(rng, base, e)) for e in (2, 6, 12, 25)]
    sh = M.shingle(pl.Series(docs), 5, single_spaced=True)
    sig = {"numpy": lambda: M.signatures_numpy(sh, 256, 0), "rensa": lambda: M.signatures_rensa(sh, 256, 0),
           "oph": lambda: M.oph_signatures(sh, 256)}[backend]()
    left, right = np.zeros(4, np.int64), np.arange(1, 5)
    est = M.signature_similarity(sig, left, right)
    true = M.true_jaccard(sh, left, right)
    assert np.allclose(true, [jaccard(docs[0], d) for d in docs[1:]], atol=1e-9)
    assert np.abs(est - true).max() < 0.12


def test_vectorised_shingles_match_reference_loop():
    """The slice-based shingle roller equals a plain per-document loop (short docs included)."""
    rng = np.random.default_rng(0)

    def ref(tok, counts, n):
        out, offs, s = [], [0], 0
        for c in counts:
            t = tok[s:s + c]
            s += c
            starts = range(c - n + 1) if c >= n else ([0] if c else [])
            for i in starts:
                h = t[i]
                for j in range(1, min(n, c)):
                    h = h * M._MIX1 + t[i + j]
                out.append(h)
            offs.append(len(out))
        return M._mix(np.array(out, dtype=np.uint64)), np.array(offs)
    with np.errstate(over="ignore"):
        for _ in range(20):
            counts = rng.integers(0, 12, rng.integers(1, 20))
            tok = rng.integers(0, 2**63, counts.sum(), dtype=np.uint64)
            for n in (1, 2, 3, 5):
                got = M._combine(tok, counts, n)
                h, o = ref(tok, counts, n)
                assert np.array_equal(got.hashes, h) and np.array_equal(got.offsets, o)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("texts", [[], [None], ["one row only"], [None, "", "", "a b"]])
def test_degenerate_tables(backend, texts, tmp_path):
    from curate import records as R
    from curate.step import StepContext
    df = R.with_ids(pl.DataFrame({"text": texts, "source": ["x"] * len(texts)},
                                 schema={"text": pl.String, "source": pl.String}))
    res = Dedup(near={"backend": backend}).process(df, StepContext("dedup", 0, 0, tmp_path))
    assert res.kept.height + res.rejected.height == len(texts)
    assert res.rejected.height == (1 if texts.count("") == 2 else 0)


def test_multi_stage_pointers_end_at_survivors(run_steps):
    """An exact duplicate of a row that near dedup later removes points to the final survivor."""
    rng = random.Random(12)
    base = words(rng, 100)
    rows = [{"text": " ".join(base) + " longer tail here"},      # kept (longest)
            {"text": " ".join(base)},                              # near dup of 0 ...
            {"text": " ".join(base).upper()}]                      # ... exact dup of 1
    res = run_steps(rows, [Dedup(keep="longest", near={"threshold": 0.8, "bands": 32, "rows": 4})])
    assert res.data()["text"].to_list() == [rows[0]["text"]]
    rej = res.rejects()
    assert set(rej["duplicate_of"]) == {res.data()["id"][0]}
    exact = rej.filter(pl.col("reason") == "exact_duplicate")
    assert "removed later" in exact["detail"][0]


@pytest.mark.skipif(not M.have_rensa(), reason="rensa backend not installed")
def test_rensa_prefilter_keeps_every_lsh_candidate():
    """rensa's band flags must cover every row our band-by-band LSH pairs on its signatures,
    otherwise the cheap path would lose recall."""
    rows, _ = planted(seed=13)
    sh = M.shingle(pl.Series([r["text"] for r in rows]), 5, single_spaced=True)
    for bands, r in ((16, 8), (32, 4)):
        full = M.signatures_rensa(sh, bands * r, 0)
        li, ri = M.lsh_pairs(full, bands, r)
        flagged = set(M.rensa_candidates(sh, bands, r, 0).tolist())
        assert len(li) >= 10 and set(li.tolist()) | set(ri.tolist()) <= flagged
