"""Augmenters (embedding swap, WordNet, noise, back-translation), the quality gate and the augment step."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate.augmenters._base import build_augmenter
from curate.augmenters.gate import GateConfig, check
from curate.errors import CurateError, DataError

EN = "The movie was really good and the actors were great in every single scene."
SPAM = "Free entry to win a prize now! Call today to claim your reward."
NON_EN = ["Привет, как у тебя дела сегодня?", "我非常喜欢这部电影，演员们都很棒。"]


# ---------------------------------------------------------------- embedding swap
def write_vectors(tmp: Path) -> dict[str, Path]:
    """A tiny vector space where glad≈happy and film≈movie, saved in three file formats."""
    from gensim.models import KeyedVectors
    words = {"happy": [1, 0.1, 0, 0], "glad": [1, 0.15, 0, 0], "movie": [0, 0, 1, 0.1],
             "film": [0, 0, 1, 0.12], "dog": [0, 1, 0, 0], "table": [0, 0, 0, 1]}
    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(list(words), np.asarray(list(words.values()), dtype=np.float32))
    out = {"bin": tmp / "v.bin", "txt": tmp / "v.txt", "glove": tmp / "glove.txt"}
    kv.save_word2vec_format(str(out["bin"]), binary=True)
    kv.save_word2vec_format(str(out["txt"]), binary=False)
    out["glove"].write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in words.items()))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["bin", "txt", "glove"])
def test_embedding_swap_reads_vector_files(tmp_path, fmt):
    path = write_vectors(tmp_path)[fmt]
    aug = build_augmenter({"embedding_swap": {"vectors": str(path), "aug_p": 1.0, "top_k": 1,
                                              "min_similarity": 0.9}})
    out = aug.augment(["I am happy with this movie", "nothing known here", ""], seed=1)
    assert out[0] == "I am glad with this film"
    assert out[1] is None and out[2] is None


def test_embedding_swap_bad_file(tmp_path):
    with pytest.raises(CurateError, match="not found"):
        build_augmenter({"embedding_swap": {"vectors": str(tmp_path / "nope.vec")}}).augment(["hi there"], 0)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CurateError, match="cannot read vector file"):
        build_augmenter({"embedding_swap": {"vectors": str(bad)}}).augment(["hi there"], 0)


@pytest.mark.slow
def test_embedding_swap_offline_default_is_seeded():
    aug = build_augmenter("embedding_swap")
    a = aug.augment([EN, SPAM, "", *NON_EN], seed=3)
    b = aug.augment([SPAM, EN], seed=3)            # batch layout does not change a row's result
    assert a[0] is not None and a[0] != EN and a[1] == b[0] and a[0] == b[1]
    assert a[2] is None and a[3] is None and a[4] is None
    variants = {tuple(aug.augment([EN], seed=s)) for s in range(6)}
    assert len(variants) > 1


# ---------------------------------------------------------------- noise
@pytest.mark.parametrize("name", ["char_noise", "keyboard", "ocr", "word_dropout"])
def test_noise_augmenters(name):
    aug = build_augmenter(name)
    out = aug.augment([EN, "", "   "], seed=11)
    assert out[0] is not None and out[0] != EN
    assert out[1] is None and out[2] is None
    assert aug.augment([EN, "", "   "], seed=11) == out
    assert json.loads(aug.params_json())["augmenter"] == name


def test_unknown_augmenter_and_bad_options():
    with pytest.raises(CurateError, match="unknown augmenter 'nope'"):
        build_augmenter("nope")
    with pytest.raises(Exception):
        build_augmenter({"keyboard": {"aug_char_p": 3}})


# ---------------------------------------------------------------- WordNet
HAS_DEBIAN_WORDNET = Path("/usr/share/wordnet/data.noun").exists()


def test_install_wordnet_without_debian_package_says_what_to_install(tmp_path):
    from curate.setup_wordnet import install_wordnet
    with pytest.raises(CurateError, match="apt-get update && apt-get install -y wordnet-base"):
        install_wordnet(tmp_path / "nltk", source=tmp_path / "empty")


def test_lexnames_file_matches_the_man_page():
    from curate.setup_wordnet import lexnames_text
    lines = lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[18] == "18\tnoun.person\t1" and lines[44] == "44\tadj.ppl\t3"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_DEBIAN_WORDNET, reason="needs `apt-get install wordnet-base wordnet-sense-index`")
def test_wordnet_setup_and_synonyms(tmp_path):
    from curate.setup_wordnet import check_wordnet, install_wordnet
    dest = install_wordnet(tmp_path / "nltk")
    assert dest == tmp_path / "nltk" / "corpora" / "wordnet" and (dest / "lexnames").exists()
    assert check_wordnet(tmp_path / "nltk") > 0
    aug = build_augmenter({"wordnet": {"nltk_data": str(tmp_path / "nltk"), "aug_p": 1.0}})
    assert "film" in [s.lower() for s in aug.synonyms("movie")] or "picture" in " ".join(aug.synonyms("movie"))
    assert aug.synonyms("movies") == ()            # inflected forms are left alone
    out = aug.augment(["A movie", "", NON_EN[0], "Ich habe keine Zeit"], seed=0)
    assert out[0] is not None and out[0] != "A movie" and out[0].startswith("A ")
    assert out[1:] == [None, None, None]


# ---------------------------------------------------------------- back-translation
@pytest.fixture(scope="module")
def marian_pair(tmp_path_factory):
    from curate.testing import tiny_marian
    root = tmp_path_factory.mktemp("marian")
    return str(tiny_marian(root / "en-de", seed=0)), str(tiny_marian(root / "de-en", seed=1))


@pytest.mark.slow
def test_backtranslate_with_tiny_marian(marian_pair):
    fw, bw = marian_pair
    aug = build_augmenter({"backtranslate": {"forward_model": fw, "backward_model": bw, "batch_size": 2,
                                             "max_new_tokens": 12}})
    texts = ["hello how are you", "", "the sea is blue and calm", "what is the capital of France?"]
    out = aug.augment(texts, seed=0)
    assert len(out) == 4 and out[1] is None
    assert all(isinstance(o, str) and o for o in (out[0], out[2], out[3]))
    assert aug.augment(texts, seed=0) == out                   # greedy: deterministic
    sampled = build_augmenter({"backtranslate": {"forward_model": fw, "backward_model": bw, "sample": True,
                                                 "max_new_tokens": 12}})
    assert sampled.augment(texts, seed=4) == sampled.augment(texts, seed=4)
    assert aug.config.models() == (fw, bw)
    assert build_augmenter({"backtranslate": {"via": "fr"}}).config.models() == (
        "Helsinki-NLP/opus-mt-en-fr", "Helsinki-NLP/opus-mt-fr-en")


# ---------------------------------------------------------------- gate
@pytest.mark.slow
def test_gate_reasons(tmp_path):
    from curate.testing import tiny_classifier
    parents = [EN, EN, EN, SPAM, SPAM]
    children = [EN, "Quantum chromodynamics of gluon plasma.",
                EN + " " + EN + " " + EN, None, SPAM.replace("prize", "award")]
    res = check(parents, children, GateConfig())
    assert res.reasons[:4] == ["gate_copy", "gate_drifted", "gate_length_ratio", "no_variant"]
    assert res.reasons[4] is None and 0.75 <= res.similarity[4] < 0.99
    # label check through a (tiny, random) text classifier whose two labels both map to "spam"
    clf = str(tiny_classifier(tmp_path / "clf"))
    g = GateConfig(label_model=clf, label_map={"LABEL_0": "spam", "LABEL_1": "spam"})
    assert check([SPAM], [children[4]], g, labels=["spam"]).reasons == [None]
    assert check([SPAM], [children[4]], g, labels=["ham"]).reasons == ["gate_label_changed"]
    # an LLM judge (tiny random Llama): its answer is not the label, so the row is rejected
    from curate.testing import tiny_llama
    judge = {"model": str(tiny_llama(tmp_path / "judge")), "backend": "transformers", "device": "cpu",
             "max_new_tokens": 4}
    assert check([SPAM], [children[4]], GateConfig(label_judge=judge), labels=["spam"]).reasons == \
        ["gate_label_changed"]
    with pytest.raises(Exception, match="min_similarity must be below"):
        GateConfig(min_similarity=0.9, max_similarity=0.5)


# ---------------------------------------------------------------- the augment step
@pytest.fixture(scope="module")
def aug_run(tmp_path_factory):
    from curate import Pipeline
    tmp = tmp_path_factory.mktemp("aug")
    rows = [{"text": EN, "label": "pos"}, {"text": SPAM, "label": "spam"}, {"text": "", "label": "pos"},
            {"text": NON_EN[0], "label": "pos"}]
    p = Pipeline(name="aug", seed=2, sources=[{"inline": {"rows": rows}}],
                 steps=[{"augment": {"embedding_swap": {}, "keyboard": {}, "multiply": 2}}],
                 workdir=str(tmp / ".curate"), out_dir=str(tmp / "out"))
    return p.run()


@pytest.mark.slow
def test_augment_step_rows_and_accounting(aug_run):
    df, rej = aug_run.data(), aug_run.rejects()
    m = aug_run.manifest["steps"][0]
    assert m["rows_in"] == 4 and m["rows_created"] == 4 * 2 * 2
    assert m["rows_in"] + m["rows_created"] == m["rows_out"] + m["rows_rejected"]
    new = df.filter(pl.col("parent_id").is_not_null())
    assert new.height >= 4
    originals = dict(zip(df["id"], df["text"]))
    for r in new.iter_rows(named=True):
        assert r["id"].startswith(r["parent_id"] + "-" + r["augmenter"])
        assert r["text"] != originals[r["parent_id"]]
        assert json.loads(r["augment_params"])["augmenter"] == r["augmenter"]
        if r["augmenter"] == "embedding_swap":
            assert 0.75 <= r["similarity"] < 0.99
    reasons = dict(zip(rej["id"], rej["reason"]))
    empty_id = [i for i, t in originals.items() if t == ""][0]
    ru_id = [i for i, t in originals.items() if t == NON_EN[0]][0]
    assert reasons[f"{empty_id}-embedding_swap1"] == "no_variant"
    assert reasons[f"{ru_id}-embedding_swap1"] == "language_unsupported"
    assert m["stats"]["augmenters"]["embedding_swap"]["rejected_by_reason"]["language_unsupported"] == 2
    # unique-text ratios in the manifest (#12): distinct texts / rows out, new variant texts / variants
    st = m["stats"]
    assert st["unique_text_ratio"] == round(df["text"].n_unique() / df.height, 4)
    new_texts = set(new["text"]) - set(df.filter(pl.col("parent_id").is_null())["text"])
    assert st["created_unique_ratio"] == round(len(new_texts) / new.height, 4)


def test_augment_step_bad_config(run_rows):
    with pytest.raises(DataError, match="no augmenter configured"):
        run_rows([{"text": "a b c"}], [{"augment": {}}])
    with pytest.raises(DataError, match="text column 'body' not found"):
        run_rows([{"text": "a b c"}], [{"augment": {"keyboard": {}, "text": "body"}}], name="b")
    with pytest.raises(Exception):
        run_rows([{"text": "a b c"}], [{"augment": {"keyboard": {}, "gate": {"nonsense": 1}}}], name="c")


@pytest.mark.slow
def test_augment_step_backtranslate_rejects_gibberish(run_rows, marian_pair):
    fw, bw = marian_pair
    res = run_rows([{"text": "the sea is blue and calm today", "label": "x"}, {"text": "", "label": "x"}],
                   [{"augment": {"backtranslate": {"forward_model": fw, "backward_model": bw,
                                                   "max_new_tokens": 12}}}])
    rej = res.rejects()
    # a random tiny Marian writes gibberish: the gate must catch it, never keep it silently
    assert rej.height == 2
    assert set(rej["reason"]) <= {"gate_drifted", "gate_length_ratio", "no_variant"}
    assert res.data().height == 2


@pytest.mark.slow
def test_backtranslate_through_a_curate_llm_backend(tmp_path):
    """The prompt path: both legs go through curate.llm (here a tiny random Llama on CPU)."""
    from curate.testing import tiny_llama
    model = str(tiny_llama(tmp_path / "llm"))
    aug = build_augmenter({"backtranslate": {"llm": {"model": model, "backend": "transformers", "device": "cpu",
                                                     "max_new_tokens": 8, "temperature": 0.0}}})
    out = aug.augment(["the sea is blue", ""], seed=0)
    assert len(out) == 2 and out[1] is None
    assert out[0] is None or isinstance(out[0], str)
    assert aug.augment(["the sea is blue", ""], seed=0) == out


def test_embedding_swap_neighbours_only_for_tried_words(tmp_path):
    """Neighbours are searched for the words a swap tries, not every eligible word; the result
    does not depend on what an earlier call left in the cache."""
    import numpy as np

    from curate.augmenters.embedding_swap import WordVectors, load_vectors
    rng = np.random.default_rng(0)
    words = [f"w{a}{b}" for a in "abcdefghij" for b in "abcdefghij"]
    path = tmp_path / "v.txt"
    path.write_text("".join(f"{w} {' '.join(f'{x:.4f}' for x in rng.normal(size=8))}\n" for w in words))
    text = " ".join(words[:60])
    cfg = {"vectors": str(path), "aug_p": 0.1, "top_k": 3, "min_similarity": -1.0, "skip_stopwords": False,
           "protect_entities": False, "content_words_only": False}
    aug = build_augmenter({"embedding_swap": cfg})
    wv: WordVectors = load_vectors(str(path), 200_000)
    wv.forget()
    first = aug.augment([text], seed=5)[0]
    assert first is not None and 6 <= len(wv._nn) < 20            # ~aug_p of 60 eligible words
    wv.neighbours(range(len(words)), 3)                             # a full cache changes nothing
    assert aug.augment([text], seed=5)[0] == first
