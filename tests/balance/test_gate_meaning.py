"""The gate sees meaning: antonyms, negation, numbers, dates, placeholders, entities and broken
grammar each get their own reason; word-swap augmenters leave protected spans alone."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from curate.augmenters._base import build_augmenter
from curate.augmenters.gate import GateConfig, check
from curate.augmenters.meaning import antonyms, meaning_reasons
from curate.errors import CurateError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("parent,child,reason", [
    ("I'll be late for dinner", "I'll be early for dinner", "gate_antonym"),
    ("he is gay", "he is heterosexual", "gate_antonym"),
    ("See you on Sunday", "See you on Tuesday", "gate_date_changed"),
    ("Call <PHONE> now", "Call <IPHONE> now", "gate_placeholder_changed"),
    ("Pay 50 pounds today", "Pay 500 pounds today", "gate_number_changed"),
    ("I am not coming", "I am coming", "gate_negation_changed"),
    ("I won ' t go", "I will go", "gate_negation_changed"),          # nlpaug's detokenised contraction
    ("John loves his dog", "Peter loves his dog", "gate_entity_changed"),
    ("how much we need for alcohol?", "how much we need for drunken?", "gate_pos_changed"),
])
def test_each_meaning_change_has_its_reason(parent, child, reason):
    assert meaning_reasons([parent], [child])[0][0] == reason


def test_meaning_kept_edits_pass():
    pairs = [("I'll be late for dinner", "I will be late for dinner"), ("The movie was great", "The film was great"),
             ("I want to buy a big car", "I want to buy a large car"), ("It is a very personal decision.",
                                                                        "It is a very personal decision!")]
    assert meaning_reasons([p for p, _ in pairs], [c for _, c in pairs]) == [None] * len(pairs)
    # character noise: a letter turned digit is no number change, a lost number is
    assert meaning_reasons(["Lol yes, see you on the bus"], ["Lol ye8, see you 0n the bus"], entities=False) == [None]
    assert meaning_reasons(["call 0800 123"], ["call 0800 1z3"], entities=False)[0][0] == "gate_number_changed"


def test_labelled_pairs_hand_made_changes_are_caught():
    rows = [json.loads(ln) for ln in (REPO / "tests/data/gate_eval.jsonl").read_text(encoding="utf-8").split("\n") if ln]
    assert len(rows) >= 300 and {r["label"] for r in rows} == {"kept", "changed"}
    rule_kinds = ("hand:antonym", "hand:negation", "hand:number", "hand:weekday", "hand:entity")
    changed = [r for r in rows if r["kind"] in rule_kinds]
    got = meaning_reasons([r["original"] for r in changed], [r["edited"] for r in changed])
    assert sum(g is not None for g in got) >= 0.95 * len(changed)
    kept = [r for r in rows if r["kind"] in ("hand:contraction", "hand:punctuation")]
    got = meaning_reasons([r["original"] for r in kept], [r["edited"] for r in kept])
    assert sum(g is not None for g in got) <= 1


def test_swaps_leave_protected_spans_alone():
    text = ("Call <PHONE> now to claim your 50 pound prize at https://example.com or mail bob@example.com, "
            "it's not too late on Sunday, said John in London")
    keep = ["<PHONE>", "50", "https://example.com", "bob@example.com", "not", "Sunday", "John", "London", "prize"]
    for spec in ({"embedding_swap": {"aug_p": 1.0, "aug_max": 50, "protect": ["prize"]}},
                 {"wordnet": {"aug_p": 1.0, "aug_max": 50, "protect": ["prize"]}}):
        out = build_augmenter(spec).augment([text], seed=3)[0]
        assert out is not None and out != text
        for span in keep:
            assert span in out, (spec, span, out)


def test_swaps_never_pick_an_antonym():
    assert "early" in antonyms("late") and "lose" in antonyms("win")
    outs = build_augmenter({"embedding_swap": {"aug_p": 1.0, "top_k": 20, "min_similarity": 0.0}}).augment(
        ["I will be late and lose the game"] * 1, seed=1)
    words = set(re.findall(r"[a-z]+", (outs[0] or "").lower()))
    assert "early" not in words and "win" not in words


def test_nli_check_with_a_sequence_pair_classifier(tmp_path):
    from curate.testing import tiny_classifier
    clf = str(tiny_classifier(tmp_path / "nli"))
    parents, children = ["The cat sat on the mat today"], ["The cat sat on a mat today"]
    strict = GateConfig(nli_model=clf, entailment_label="LABEL_0", min_entailment=1.0, min_similarity=-1, max_similarity=1.0)
    res = check(parents, children, strict)
    assert res.reasons == ["gate_not_entailed"] and "P(entailment)" in res.details[0]
    lax = GateConfig(nli_model=clf, entailment_label="LABEL_0", min_entailment=0.0, min_similarity=-1, max_similarity=1.0)
    assert check(parents, children, lax).reasons == [None]
    with pytest.raises(CurateError, match="has no label 'entailment'"):
        check(parents, children, GateConfig(nli_model=clf, min_similarity=-1, max_similarity=1.0))


def test_replacements_take_the_inflection_of_the_word_they_replace():
    from curate.augmenters.protect import inflect_like
    assert inflect_like("enjoy", ("VERB", "VBZ")) == "enjoys"
    assert inflect_like("stride", ("VERB", "VBD")) == "strode"
    assert inflect_like("child", ("NOUN", "NNS")) == "children"
    assert inflect_like("big", ("ADJ", "JJR")) == "bigger"
    assert inflect_like("film", ("NOUN", "NN")) == "film" and inflect_like("film", None) == "film"


def test_antonym_table_matches_nltk_lemma_antonyms():
    """The one-pass table over WordNet's data files gives what NLTK's per-lemma reading gives."""
    from curate.augmenters import meaning
    wn = meaning._wordnet()
    assert wn is not None, "WordNet not set up: run `curate setup wordnet` (the other gate tests need it too)"

    def nltk_antonyms(word):
        out = {b for a, b in meaning._EXTRA if a == word}
        for base in {word} | {b for pos in "nvar" if (b := wn.morphy(word, pos))}:
            for lemma in wn.lemmas(base):
                out |= {a.name().lower().replace("_", " ") for a in lemma.antonyms()}
                for sim in lemma.synset().similar_tos():
                    for lm in sim.lemmas():
                        out |= {a.name().lower() for a in lm.antonyms()}
        return frozenset(out)

    words = ["late", "cheap", "good", "hot", "win", "won", "up", "old", "buy", "bought", "happier", "cat", "kind",
             "heavy", "lightly", "open", "closing", "inexpensive", "nascent", "xyzzy"]
    for w in words:
        assert antonyms(w) == nltk_antonyms(w), w
    assert "expensive" in antonyms("cheap") and "early" in antonyms("late")


def test_spacy_readings_match_the_full_pipeline_and_are_cached():
    """text_info skips the attribute ruler's matcher but gives the POS it would; a text is read once."""
    from curate.augmenters import meaning
    nlp = meaning._spacy()
    assert nlp is not None, "spaCy's English pipeline not installed (the [ner] extra, part of [dev])"
    texts = ["Is there anything he does not like? I've been waiting since Monday, John said.",
             "She has nothing to do with it, but they were here once.", "Call 0800 123 456 now!"]
    meaning.forget_readings()
    infos = meaning.text_info(texts + texts[:1])
    for info, doc in zip(infos, nlp.pipe(texts)):
        assert info.tokens == tuple((t.idx, t.lower_, t.pos_, t.tag_, t.is_alpha) for t in doc)
        assert info.ents == tuple((e.start_char, e.end_char, e.label_, e.text) for e in doc.ents)
    assert infos[3] is infos[0] and all(t in meaning._INFO for t in texts)
    assert meaning.text_info(texts[1:2])[0] is infos[1]          # the gate re-reads parents for free
