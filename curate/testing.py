"""Tiny, random-initialised models for tests and CPU benchmarks (no hub, no network).

They load through the same code paths as real model names (``from_pretrained(path)``), so tests
exercise what users run. Content they generate is gibberish; mechanics are real.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable
from curate.extras import require

DEFAULT_CORPUS = [
    "Classify the sentiment of the sentence as positive or negative.",
    "Write a short poem about the sea. The waves are blue and calm.",
    "Translate the sentence into French. Hello, how are you today?",
    "What is the capital of France? The capital of France is Paris.",
    "Give three tips for staying healthy: eat well, sleep, exercise.",
    "Summarise the paragraph in one sentence. Free entry to win a prize now!",
    "ham spam yes no true false 0 1 2 3 4 5 6 7 8 9 answer question input output",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def tiny_tokenizer(path: str | Path, corpus: Iterable[str] | None = None, vocab_size: int = 512):
    """Train a byte-level BPE tokenizer in about a second and save it as a HF fast tokenizer."""
    require("tokenizers", extra="ml")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    require("transformers", extra="ml")
    from transformers import PreTrainedTokenizerFast

    texts = list(corpus or DEFAULT_CORPUS) * 4
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=1,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(path))
    return fast


def tiny_llama(path: str | Path, *, hidden_size: int = 64, layers: int = 2, heads: int = 4,
               vocab_size: int = 512, max_positions: int = 1024, seed: int = 0,
               corpus: Iterable[str] | None = None) -> Path:
    """Save a random-initialised Llama-shaped causal LM plus tokenizer under ``path``."""
    require("torch", extra="ml")
    import torch
    require("transformers", extra="ml")
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tok = tiny_tokenizer(path, corpus, vocab_size)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                      max_position_embeddings=max_positions, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(str(path))
    return path


def tiny_classifier(path: str | Path, num_labels: int = 2, *, hidden_size: int = 64, layers: int = 2,
                    seed: int = 0, corpus: Iterable[str] | None = None) -> Path:
    """Save a random-initialised Llama sequence-classification model (reward model / classifier)."""
    require("torch", extra="ml")
    import torch
    require("transformers", extra="ml")
    from transformers import LlamaConfig, LlamaForSequenceClassification

    path = Path(path)
    tok = tiny_tokenizer(path, corpus)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                      max_position_embeddings=1024, pad_token_id=tok.pad_token_id,
                      num_labels=num_labels)
    LlamaForSequenceClassification(cfg).save_pretrained(str(path))
    return path


def tiny_marian(path: str | Path, *, d_model: int = 32, layers: int = 1, heads: int = 2,
                vocab_size: int = 160, seed: int = 0, corpus: Iterable[str] | None = None) -> Path:
    """Save a random-initialised MarianMT model plus a real ``MarianTokenizer`` under ``path``.

    The tokenizer's SentencePiece model is trained on ``corpus`` in well under a second (needs the
    ``sentencepiece`` package, which real opus-mt models need too), so the model loads through
    ``AutoTokenizer`` / ``AutoModelForSeq2SeqLM`` exactly like ``Helsinki-NLP/opus-mt-*``."""
    import io
    import json

    require("sentencepiece", extra="ml")
    import sentencepiece as spm
    require("torch", extra="ml")
    import torch
    require("transformers", extra="ml")
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(list(corpus or DEFAULT_CORPUS) * 4), model_writer=buf,
                                   vocab_size=vocab_size, model_type="unigram", hard_vocab_limit=False,
                                   character_coverage=1.0, minloglevel=2)
    for name in ("source.spm", "target.spm"):
        (path / name).write_bytes(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = {"</s>": 0, "<unk>": 1}
    for pc in pieces:
        if pc not in vocab and pc not in ("<s>", "<pad>"):
            vocab[pc] = len(vocab)
    vocab["<pad>"] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tok = MarianTokenizer(str(path / "source.spm"), str(path / "target.spm"), str(path / "vocab.json"))
    tok.save_pretrained(str(path))
    torch.manual_seed(seed)
    pad = vocab["<pad>"]
    cfg = MarianConfig(vocab_size=len(vocab), d_model=d_model, encoder_layers=layers, decoder_layers=layers,
                       encoder_attention_heads=heads, decoder_attention_heads=heads,
                       encoder_ffn_dim=d_model * 2, decoder_ffn_dim=d_model * 2, max_position_embeddings=256,
                       pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad, forced_eos_token_id=0,
                       max_length=64)
    MarianMTModel(cfg).save_pretrained(str(path))
    return path
