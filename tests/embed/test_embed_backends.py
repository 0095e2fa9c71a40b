"""curate.embed backends: choice, order after length sorting, ONNX vectors close to torch, the
on-disk export cache. A tiny random BERT (the real MiniLM's tokenizer, 2 small layers) keeps the
exports to a second or two; one slow test checks the real default model's int8 drift."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("sentence_transformers")

import curate.embed as E  # noqa: E402
from curate.errors import CurateError  # noqa: E402

TEXTS = [
    "ok",
    "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121 now!",
    "The company said its third-quarter profit rose 12 percent on higher sales of its software "
    "products, beating what analysts had expected by a wide margin.",
    "I'm gonna be home soon",
    "Water boils at 100 degrees.",
    "",
    "Shares fell.",
]


def test_length_order_longest_first_and_stable():
    order = E.length_order(["bb", "a", "ccc", "dd", ""])
    assert order.tolist() == [2, 0, 3, 1, 4]


def test_onnx_close_to_torch_and_order_restored(tiny_st, cache):
    model = str(tiny_st)
    torch_v = E.embed(TEXTS, model, batch_size=3, backend="torch")
    onnx_v = E.embed(TEXTS, model, batch_size=3, backend="onnx")
    assert onnx_v.shape == (len(TEXTS), 32) and onnx_v.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx_v, axis=1), 1, atol=1e-5)
    cos = (torch_v * onnx_v).sum(1)
    assert cos.min() >= 0.99, cos
    # length-sorted batches, then back in the caller's order: each row equals the text alone
    alone = np.vstack([E.embed([t], model, backend="onnx") for t in TEXTS])
    assert np.allclose(onnx_v, alone, atol=1e-5)
    shuffled = [TEXTS[i] for i in (3, 0, 6, 1, 5, 2, 4)]
    assert np.allclose(E.embed(shuffled, model, batch_size=2, backend="onnx"),
                       onnx_v[[3, 0, 6, 1, 5, 2, 4]], atol=1e-5)


def test_parallel_sessions_give_the_same_vectors(tiny_st, cache, monkeypatch):
    one = E.embed(TEXTS * 5, str(tiny_st), batch_size=2, backend="onnx")
    monkeypatch.setenv("CURATE_EMBED_SESSIONS", "3")
    monkeypatch.setenv("CURATE_EMBED_SPIN", "0")
    assert E.session_settings() == (3, 1, False)
    E.load_encoder.cache_clear()
    enc = E.load_encoder(str(tiny_st), None, "onnx")
    assert len(enc.sessions) == 3
    assert np.allclose(enc.encode(TEXTS * 5, 2), one, atol=1e-6)
    assert np.allclose(enc.encode(TEXTS[:1], 2), one[:1], atol=1e-6)     # fewer batches than sessions
    monkeypatch.setenv("CURATE_EMBED_THREADS", "2")
    assert E.session_settings() == (3, 2, False)
    monkeypatch.setenv("CURATE_EMBED_SESSIONS", "two")
    with pytest.raises(CurateError, match="CURATE_EMBED_SESSIONS='two'"):
        E.session_settings()


def test_int8_export_records_drift_and_is_cached(tiny_st, cache, monkeypatch):
    folder, path, _, meta = E.exported_model(str(tiny_st), "onnx-int8")
    assert path.is_file() and path.parents[2] == cache / "embed"
    drift = meta["drift_vs_fp32"]
    assert 0 < drift["cosine_min"] <= drift["cosine_mean"] <= 1.0001
    assert json.loads((path.parent / "meta.json").read_text()) == meta
    # second call: found on disk, nothing exported again
    monkeypatch.setattr(E, "_export_fp32", lambda *a: pytest.fail("exported twice"))
    monkeypatch.setattr("onnxruntime.quantization.quantize_dynamic", lambda *a, **k: pytest.fail("quantised twice"))
    assert E.exported_model(str(tiny_st), "onnx-int8")[1] == path
    v = E.embed(TEXTS, str(tiny_st), backend="onnx-int8")
    assert v.shape == (len(TEXTS), 32)


def test_auto_is_fp32_onnx_and_int8_rule_reads_recorded_drift(tiny_st, cache, monkeypatch):
    _, _, _, meta = E.exported_model(str(tiny_st), "onnx-int8")
    # auto never takes int8 (its vectors depend on the batch): the fp32 export, same as torch
    assert E.load_encoder(str(tiny_st), None, "auto").backend == "onnx"
    monkeypatch.setattr(E, "INT8_MIN_MEAN_COSINE", 0.0)
    monkeypatch.setattr(E, "INT8_MIN_COSINE", 0.0)
    assert E.int8_ok(meta)
    monkeypatch.setattr(E, "INT8_MIN_MEAN_COSINE", 1.5)     # no int8 drift can pass this
    assert not E.int8_ok(meta)
    assert not E.int8_ok({})


def test_backend_choice_env_fallbacks_and_errors(tiny_st, cache, monkeypatch, tmp_path):
    monkeypatch.setenv(E.BACKEND_ENV, "torch")
    assert E.load_encoder(str(tiny_st)).backend == "torch"
    monkeypatch.setenv(E.BACKEND_ENV, "fastest")
    with pytest.raises(CurateError, match="CURATE_EMBED_BACKEND"):
        E.default_backend()
    with pytest.raises(CurateError, match="choose one of"):
        E.load_encoder(str(tiny_st), None, "tensorrt")
    monkeypatch.delenv(E.BACKEND_ENV)
    # auto on a GPU device, or without onnxruntime, or for a model ONNX cannot run: torch
    assert E._gpu_wanted("cuda:0") and not E._gpu_wanted("cpu")
    monkeypatch.setattr(E, "available", lambda m: m != "onnxruntime")
    assert E.load_encoder(str(tiny_st), None, "auto").backend == "torch"
    monkeypatch.undo()
    monkeypatch.setenv(E.CACHE_ENV, str(cache))
    odd = tmp_path / "odd"
    shutil.copytree(tiny_st, odd)
    modules = json.loads((odd / "modules.json").read_text())
    (odd / "modules.json").write_text(json.dumps(modules + [
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}]))
    assert E.model_spec(odd) is None
    E.load_encoder.cache_clear()
    with pytest.raises(CurateError, match="use backend torch"):
        E.load_encoder(str(odd), None, "onnx")


def test_empty_input_loads_nothing(monkeypatch):
    monkeypatch.setattr(E, "load_encoder", lambda *a: pytest.fail("loaded a model for no text"))
    assert E.embed([]).shape == (0, 384)


def test_static_encoder_reads_a_model2vec_folder(tmp_path):
    pytest.importorskip("model2vec")
    from .conftest import write_static
    enc = E.StaticEncoder(write_static(tmp_path / "static"))
    v = enc.encode(TEXTS[:5], 64)
    assert v.shape == (5, 16) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert np.allclose(enc.encode(TEXTS[:5][::-1], 64), v[::-1], atol=1e-6)


@pytest.mark.slow
def test_default_minilm_int8_close_to_torch(data_dir):
    """The real default model on SMS texts (export cached in the user cache dir): ONNX fp32 equals
    torch, int8 stays close and its drift recorded at export is small; auto takes fp32 ONNX."""
    lines = (data_dir / "sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sms = [ln.split("\t", 1)[1] for ln in lines[:120]]
    E.load_encoder.cache_clear()
    t = E.embed(sms, backend="torch")
    assert (t * E.embed(sms, backend="onnx")).sum(1).min() >= 0.9999
    cos = (t * E.embed(sms, backend="onnx-int8")).sum(1)
    assert cos.mean() >= 0.985 and cos.min() >= 0.9, (cos.mean(), cos.min())
    assert E.int8_ok(E.load_encoder(None, None, "onnx-int8").meta)
    assert E.load_encoder(None, None, "auto").backend == "onnx"
