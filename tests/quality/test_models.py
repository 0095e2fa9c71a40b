"""Model-backed quality steps: domain relevance (MiniLM), NER PII (spaCy en_core_web_sm) and the
diversity report (distinct-n, embedding clusters)."""
from __future__ import annotations

import polars as pl
import pytest

from curate import Pipeline
from curate.steps.quality.diversity import DiversityReport, distinct_n

from .conftest import frame, reasons, run_step

SPAMMY = ["WINNER! You have won a free prize, call now to claim", "Free entry in a weekly competition to win cash",
          "URGENT: your mobile number has been awarded a bonus"]


@pytest.mark.slow
def test_domain_relevance_keeps_on_domain_rows(sms):
    from curate.steps.quality.relevance import DomainRelevance
    spam = sms.filter(pl.col("label") == "spam").slice(10, 20).get_column("text").to_list()
    off = ["Preheat the oven to 200 degrees and roast the vegetables for forty minutes.",
           "The mitochondria is the powerhouse of the cell, producing ATP through respiration.",
           "The treaty was signed in 1648, ending the Thirty Years' War in Europe."]
    res = run_step(DomainRelevance(exemplars=SPAMMY, threshold=0.25), frame(off + spam))
    got = reasons(res)
    assert {f"r{i}" for i in range(3)} <= set(got) and set(got.values()) == {"off_domain"}
    assert res.kept.height >= 0.7 * len(spam)
    assert res.kept["relevance"].min() >= 0.25 and "relevance" in res.rejected.columns
    cen = run_step(DomainRelevance(exemplars=SPAMMY, threshold=0.25, against="centroid",
                                   similarity_column="sim"), frame(off))
    assert cen.kept.height == 0 and cen.rejected["sim"].max() < 0.25


@pytest.mark.slow
def test_ner_pii_redacts_entities_and_counts_them(sms, tmp_path):
    from curate.steps.quality.ner_pii import NerPii
    rows = ["Barack Obama met Angela Merkel in Berlin to discuss Microsoft.",
            "ok see you later", None, ""]
    res = run_step(NerPii(), frame(rows))
    text = res.kept["text"].to_list()
    assert "Obama" not in text[0] and "Berlin" not in text[0] and "Microsoft" not in text[0]
    assert "<PERSON>" in text[0] and "<LOCATION>" in text[0] and "<ORG>" in text[0]
    assert text[1:] == rows[1:]
    assert res.stats["ner_redacted"]["PERSON"] == 2 and res.stats["ner_redacted"]["GPE"] == 1
    assert res.stats["ner_rows"] == 1
    # through the engine: counts in the manifest, no row lost
    p = Pipeline(name="ner", sources=[{"inline": {"rows": [{"t": r} for r in sms["text"].head(200).to_list()], "text": "t"}}],
                 steps=[{"ner_pii": {}}], workdir=str(tmp_path / ".c"), out_dir=str(tmp_path / "o"))
    r = p.run()
    st = r.manifest["steps"][0]
    assert st["rows_out"] == 200 and sum(st["stats"]["ner_redacted"].values()) > 0


def test_distinct_n_exact_values():
    got = distinct_n(pl.Series(["a b a b", "a b c", None]), [1, 2])
    assert got == {"distinct_1": round(3 / 7, 4), "distinct_2": round(3 / 5, 4)}   # ab,ba,ab | ab,bc


@pytest.mark.slow
def test_diversity_report_finds_the_rare_topic():
    food = [f"Shall we get {d} for dinner tonight at {t}?" for d in ("pizza", "sushi", "curry", "tacos", "pasta")
            for t in ("six", "seven", "eight", "nine")]
    football = [f"Did you watch the {c} match, what a goal in the {m} minute!" for c in ("Arsenal", "Chelsea", "Liverpool", "Everton")
                for m in ("first", "last", "tenth", "90th", "early")]
    rare = ["The mitochondria produce ATP through cellular respiration.",
            "Photosynthesis in chloroplasts converts light into chemical energy."]
    df = frame(food + football + rare)
    res = run_step(DiversityReport(clusters=3, rarest=2, cluster_column="cluster"), df)
    st = res.stats
    assert res.kept.height == df.height and res.rejected.height == 0
    assert st["clusters"] == 3 and sorted(st["cluster_sizes"]) == [2, 20, 20]
    assert 0 < st["cluster_coverage"] < 1 and 0 < st["distinct_1"] < 1
    assert st["small_clusters"] == 0 and st["rarest_clusters"][0]["size"] == 2
    assert {e["id"] for e in st["rarest_clusters"][0]["examples"]} == {"r40", "r41"}
    assert res.kept["cluster"].n_unique() == 3
