"""The same pipeline file on the local engine and on Ray (local cluster, 2 CPUs) writes the same
rows with the same ids, the same output files and rejects, and manifests with the same counts."""
from __future__ import annotations

import pytest

QUICKSTART = {
    "name": "quickstart", "seed": 13, "batch_size": 1000,
    "sources": [
        {"tsv": {"name": "sms", "path": "{data}/sms_spam_collection.tsv", "text": "SMS", "label": "Label"}},
        {"jsonl": {"name": "hh", "path": "{data}/hh_rlhf_harmless_base_test_first300.jsonl"}},
    ],
    "steps": [
        {"clean": {"apply_to": ["sms"], "min_words": 3}},
        {"dedup": {"apply_to": ["sms"], "columns": ["text"], "near": {"threshold": 0.7}}},
        {"balance": {"apply_to": ["sms"], "method": "undersample", "label": "label"}},
        {"dpo_pairs": {"apply_to": ["hh"]}},
    ],
    "outputs": [
        {"natural_instructions": {"sources": ["sms"], "dir": "{out}/ni", "task_number": 9001,
                                  "task_name": "sms_spam", "source": ["sms_spam_collection"],
                                  "definition": "Classify the SMS as spam or ham.",
                                  "categories": ["Text Categorization"], "domains": ["Social Media"],
                                  "instance_license": ["see NOTICE.md"],
                                  "auto_examples": {"positive": 2, "negative": 1}}},
        {"dpo": {"sources": ["hh"], "path": "{out}/dpo.jsonl"}},
    ],
}


def test_quickstart_clean_dedup_balance_dpo_ni(run_both):
    """Clean, exact + near dedup and balance on one source, DPO pairs on the other (apply_to
    everywhere), NI + DPO outputs; several blocks per batch step."""
    local, ray = run_both(QUICKSTART)
    steps = {s["name"]: s for s in ray.manifest["steps"]}
    assert steps["clean"]["stats"]["ray"]["blocks"] > 2
    assert 0 < steps["dedup"]["stats"]["ray"]["candidate_rows"] < steps["dedup"]["rows_in"]
    assert steps["dedup"]["rows_rejected"] > 0 and steps["balance"]["rows_rejected"] > 0


CORPUS = {
    "name": "corpus", "seed": 3, "batch_size": 128,
    "sources": [{"jsonl": {"name": "docs", "path": "{corpus}/part*.jsonl"}}],
    "steps": [
        {"clean": {"min_words": 3}},
        {"dedup": {"keep": "longest", "near": {"threshold": 0.75, "ngram": 3}}},
        {"split": {"test": 0.2, "validation": 0.1, "stratify": "label"}},
    ],
    "outputs": [{"jsonl": {"path": "{out}/all.jsonl"}}],
}


def _corpus_doc(corpus, **changes):
    import json
    doc = json.loads(json.dumps(CORPUS).replace("{corpus}", str(corpus)))
    return {**doc, **changes}


def test_glob_source_dedup_split_jsonl(run_both, corpus):
    """A glob of two files; exact + near dedup keeping the longest row of each cluster; split
    (gathered to the driver); JSONL output."""
    local, ray = run_both(_corpus_doc(corpus))
    steps = {s["name"]: s for s in ray.manifest["steps"]}
    assert steps["dedup"]["stats"]["exact"]["duplicates"] > 0
    assert steps["dedup"]["stats"]["near"]["duplicates"] > 0
    assert steps["split"]["stats"]["ray"]["gathered_rows"] == steps["split"]["rows_in"]


@pytest.mark.slow
def test_augment_as_actor_pool(run_both, tmp_path):
    """augment (a model step: the gate embeds every pair) runs as a pool of 2 actors; its seeds are
    per batch, so block k must hold the local batch k for the variants to match."""
    from ._helpers import make_corpus
    corpus = make_corpus(tmp_path / "small", n=30)
    doc = _corpus_doc(corpus, batch_size=12, steps=[
        {"clean": {"min_words": 3}},
        {"augment": {"char_noise": {}, "check_language": False,
                     "gate": {"meaning_checks": False}}},
        {"split": {"test": 0.25, "validation": 0.0, "stratify": "label"}},
    ])
    local, ray = run_both(doc, ray={"steps": {"augment": {"actors": 2}}})
    aug = ray.manifest["steps"][1]
    assert aug["rows_created"] > 0 and aug["stats"]["ray"]["actors"] and aug["stats"]["ray"]["blocks"] >= 3


@pytest.mark.slow
def test_hash_shuffle(run_both, corpus):
    """dedup's hash-shuffle variant (Ray Data's hash repartition on the keys) agrees too."""
    doc = _corpus_doc(corpus)
    doc["steps"] = doc["steps"][:2]
    local, ray = run_both(doc, ray={"shuffle": "hash", "max_retries": 2})
    assert ray.manifest["steps"][1]["stats"]["ray"]["shuffle"] == "hash"
    assert ray.manifest["steps"][1]["rows_rejected"] > 0
