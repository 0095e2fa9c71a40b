"""Tiny embedding models for the embed tests: a random 2-layer BERT in a sentence-transformers
folder (the real MiniLM's tokenizer), a random model2vec static model, and a private cache dir."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import curate.embed as E


@pytest.fixture(scope="session")
def tiny_st(tmp_path_factory) -> Path:
    """A sentence-transformers folder: random 2-layer BERT, MiniLM's tokenizer, mean pooling."""
    import torch
    from transformers import BertConfig, BertModel
    src = Path(E.resolve_model_path(None))
    dst = tmp_path_factory.mktemp("tiny_st")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(str(dst))
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
              "modules.json", "sentence_bert_config.json"):
        shutil.copy(src / f, dst / f)
    (dst / "1_Pooling").mkdir()
    pool = json.loads((src / "1_Pooling" / "config.json").read_text())
    pool["word_embedding_dimension"] = 32
    (dst / "1_Pooling" / "config.json").write_text(json.dumps(pool))
    (dst / "2_Normalize").mkdir(exist_ok=True)
    return dst


def write_static(folder: Path, dim: int = 16, seed: int = 0) -> Path:
    """A model2vec static model with random vectors over MiniLM's tokenizer, saved to ``folder``."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(Path(E.resolve_model_path(None)) / "tokenizer.json"))
    vecs = np.random.default_rng(seed).normal(size=(tok.get_vocab_size(), dim)).astype(np.float32)
    StaticModel(vectors=vecs, tokenizer=tok).save_pretrained(str(folder))
    return folder


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(E.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(E.BACKEND_ENV, raising=False)
    E.load_encoder.cache_clear()
    yield tmp_path / "cache"
    E.load_encoder.cache_clear()
