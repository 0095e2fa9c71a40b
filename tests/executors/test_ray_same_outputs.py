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
    "name": "corpus", "seed": 3, "batch_size": 64,
    "sources": [{"jsonl": {"name": "docs", "path": "{corpus}/part*.jsonl"}}],
    "steps": [
        {"clean": {"min_words": 3}},
        {"dedup": {"keep": "longest", "near": {"threshold": 0.75, "ngram": 3}}},
        {"augment": {"char_noise": {}, "check_language": False}},
        {"split": {"test": 0.2, "validation": 0.1, "stratify": "label"}},
    ],
    "outputs": [{"jsonl": {"path": "{out}/all.jsonl"}}],
}


def _corpus_doc(corpus):
    import json
    return json.loads(json.dumps(CORPUS).replace("{corpus}", str(corpus)))


def test_glob_source_dedup_augment_split(run_both, corpus):
    """A glob of two files; exact + near dedup keeping the longest; augment (an actor pool, and
    per-batch seeds: block k must be the local batch k); split; JSONL output."""
    local, ray = run_both(_corpus_doc(corpus))
    steps = {s["name"]: s for s in ray.manifest["steps"]}
    assert steps["dedup"]["stats"]["exact"]["duplicates"] > 0
    assert steps["dedup"]["stats"]["near"]["duplicates"] > 0
    assert steps["augment"]["rows_created"] > 0 and steps["augment"]["stats"]["ray"]["actors"]
    assert steps["split"]["stats"]["ray"]["gathered_rows"] == steps["split"]["rows_in"]


@pytest.mark.slow
def test_hash_shuffle_and_task_options(run_both, corpus):
    """dedup's hash-shuffle variant and per-step options (augment as plain tasks) agree too."""
    doc = _corpus_doc(corpus)
    doc["steps"] = doc["steps"][:3]
    local, ray = run_both(doc, ray={"shuffle": "hash", "max_retries": 2,
                                    "steps": {"augment": {"num_cpus": 1, "actors": 1}}})
    assert ray.manifest["steps"][1]["stats"]["ray"]["shuffle"] == "hash"
    assert ray.manifest["steps"][1]["rows_rejected"] > 0
