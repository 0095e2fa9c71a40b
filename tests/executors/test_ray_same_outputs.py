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
    assert steps["dedup"]["stats"]["ray"]["groups"] == 1          # few candidates: resolved by the driver
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
    assert steps["dedup"]["stats"]["ray"]["groups"] >= 2          # groups of components in tasks
    assert steps["split"]["stats"]["ray"]["gathered_rows"] == steps["split"]["rows_in"]
    # the same file again: every step comes from the Ray cache, the outputs are the same
    from curate.pipeline import load_yaml

    from ._helpers import assert_same_run
    again = load_yaml(ray.manifest["file"]).run()
    assert again.manifest["all_cached"] and all(s["cached"] for s in again.manifest["steps"])
    assert_same_run(local, again)


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


@pytest.mark.slow
def test_semantic_dedup_gathered(run_both, tmp_path):
    """dedup with a semantic stage (sentence embeddings) is gathered to the driver: same rows."""
    from ._helpers import make_corpus
    corpus = make_corpus(tmp_path / "sem", n=40)
    doc = _corpus_doc(corpus, batch_size=16, steps=[
        {"dedup": {"near": {"threshold": 0.8, "ngram": 3}, "semantic": {"threshold": 0.97}}}])
    local, ray = run_both(doc)
    st = ray.manifest["steps"][0]["stats"]
    assert st["ray"]["gathered_rows"] == ray.manifest["steps"][0]["rows_in"] and "semantic" in st


@pytest.mark.slow
def test_synthesize_tiny_model_gathered(run_both, tmp_path, monkeypatch):
    """synthesize (a global LLM step; a tiny random Llama) is gathered to the driver and gives the
    local rows: generation is seeded, so the same prompts give the same rows."""
    from curate.testing import tiny_llama
    model = tiny_llama(tmp_path / "tiny")
    doc = {
        "name": "synth", "seed": 7, "batch_size": 64,
        "sources": [{"jsonl": {"name": "seeds", "path": "{data}/self_instruct_seed_tasks.jsonl",
                               "fields": {"seed_id": "id"}, "limit": 40}}],
        "steps": [{"synthesize": {"kind": "instructions", "model": str(model), "n": 2,
                                  "prompts_per_round": 2, "instances_per_task": 2,
                                  "max_new_tokens": 16, "max_input_tokens": 16, "min_words": 1,
                                  "rouge_threshold": 0.9}}],
        "outputs": [{"jsonl": {"path": "{out}/synth.jsonl"}}],
    }
    local, ray = run_both(doc)
    assert ray.manifest["steps"][0]["stats"]["ray"]["gathered_rows"] == 40
