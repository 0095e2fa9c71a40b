"""The shared ``embedding: {model, backend, batch_size, device}`` block (:class:`EmbedConfig`):
validation, the env override, the older flat keys, every embedding step passing it through to
:func:`curate.embed.embed`, and ``curate setup embeddings`` filling the cache."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

pytest.importorskip("onnxruntime")
pytest.importorskip("model2vec")

import curate.embed as E  # noqa: E402
from curate.augmenters.gate import GateConfig, check  # noqa: E402
from curate.embed import EmbedConfig  # noqa: E402
from curate.errors import CurateError  # noqa: E402
from curate.step import StepContext  # noqa: E402
from curate.steps.balance import BalanceConfig  # noqa: E402
from curate.steps.dedup.semantic import SemanticConfig  # noqa: E402
from curate.steps.quality.diversity import DiversityConfig, DiversityReport  # noqa: E402
from curate.steps.quality.relevance import DomainRelevance, RelevanceConfig  # noqa: E402

from .conftest import write_static  # noqa: E402

SPEC = {"model": "some/model", "backend": "onnx-int8", "batch_size": 5, "device": "cpu"}
WANT = ("some/model", 5, "cpu", "onnx-int8")


def _frame(texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts})


def _ctx() -> StepContext:
    from pathlib import Path
    return StepContext("s", 0, 0, Path("/tmp"))


def _built_static(model):
    """Put a tiny random static model where the cache expects ``model``'s distillation."""
    d = E.static_model_dir(str(model))
    write_static(d)
    (d / "meta.json").write_text(json.dumps({"backend": "static"}))
    return d


@pytest.fixture
def spy(monkeypatch):
    """Replace curate.embed.embed: record (model, batch_size, device, backend) per call and return
    fixed unit vectors per text (so steps run without a model)."""
    calls: list[tuple] = []

    def fake(texts, model=None, batch_size=64, device=None, show_progress=False, backend=None):
        calls.append((model, batch_size, device, backend))
        v = np.stack([np.random.default_rng(sum(map(ord, t)) + len(t)).normal(size=8) for t in texts]) \
            if len(texts) else np.zeros((0, 8))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    monkeypatch.delenv(E.BACKEND_ENV, raising=False)
    monkeypatch.setattr(E, "embed", fake)
    return calls


def test_embed_config_validates_its_fields():
    assert EmbedConfig().backend == "auto" and EmbedConfig().batch_size == 64
    with pytest.raises(ValidationError, match="'auto', 'torch', 'onnx', 'onnx-int8' or 'static'"):
        EmbedConfig(backend="fastest")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        EmbedConfig(batch_size=0)
    with pytest.raises(ValidationError, match="Extra inputs"):
        EmbedConfig(modle="x")
    # nested in a step, the error names the step option's path
    with pytest.raises(ValidationError, match=r"embedding\.backend"):
        SemanticConfig(embedding={"backend": "gpu"})


def test_missing_static_model_says_how_to_build_it(tiny_st, cache):
    with pytest.raises(ValidationError, match=rf"curate setup embeddings --static --model {tiny_st}"):
        EmbedConfig(model=str(tiny_st), backend="static")
    with pytest.raises(ValidationError, match=r"embedding\n.*not built yet"):
        RelevanceConfig(exemplars=["x"], embedding={"model": str(tiny_st), "backend": "static"})
    with pytest.raises(CurateError, match="curate setup embeddings --static"):     # no silent distillation
        E.embed(["a"], str(tiny_st), backend="static")
    _built_static(tiny_st)
    cfg = EmbedConfig(model=str(tiny_st), backend="static")
    v = cfg.embed(["hello there", "ok"])
    assert v.shape == (2, 16) and E.load_encoder(str(tiny_st), None, "static").backend == "static"


def test_env_var_overrides_the_configured_backend(tiny_st, cache, monkeypatch):
    cfg = EmbedConfig(model=str(tiny_st), backend="onnx")
    assert cfg.effective_backend() == "onnx"
    monkeypatch.setenv(E.BACKEND_ENV, "torch")
    assert cfg.effective_backend() == "torch"
    # what a step records (and its fingerprint hashes) is the backend that runs
    assert cfg.model_dump()["backend"] == "torch" and cfg.backend == "onnx"
    assert SemanticConfig(embedding=cfg).model_dump(mode="json")["embedding"]["backend"] == "torch"
    assert E.load_encoder(str(tiny_st), None, cfg.effective_backend()).backend == "torch"
    monkeypatch.setenv(E.BACKEND_ENV, "static")        # ops force static: checked when it embeds
    forced = EmbedConfig(model=str(tiny_st))
    with pytest.raises(CurateError, match="curate setup embeddings --static"):
        forced.embed(["x"])
    monkeypatch.setenv(E.BACKEND_ENV, "warp")
    with pytest.raises(CurateError, match="CURATE_EMBED_BACKEND='warp'"):
        cfg.effective_backend()


def test_older_flat_keys_fold_into_the_block():
    want = EmbedConfig(model="m", batch_size=8, device="cpu")
    assert SemanticConfig(model="m", batch_size=8, device="cpu").embedding == want
    assert RelevanceConfig(exemplars=["x"], model="m", batch_size=8, device="cpu").embedding == want
    assert DiversityConfig(model="m", batch_size=8).embedding == EmbedConfig(model="m", batch_size=8)
    assert GateConfig(embed_model="m").embedding == EmbedConfig(model="m")
    assert BalanceConfig(embed_model="m", embedding={"backend": "torch"}).embedding == \
        EmbedConfig(model="m", backend="torch")
    assert SemanticConfig(model="m", embedding={"model": "m"}).embedding.model == "m"
    with pytest.raises(ValidationError, match="`model` and `embedding.model` both given"):
        SemanticConfig(model="a", embedding={"model": "b"})
    # the dumped config (the step fingerprint) holds only the block
    dumped = SemanticConfig(model="m").model_dump()
    assert "model" not in dumped and dumped["embedding"]["model"] == "m"
    assert SemanticConfig(**dumped) == SemanticConfig(model="m")


def test_each_embedding_step_passes_its_block_through(spy):
    from curate.steps._smote import Points, Realised, _judge
    from curate.steps.balance import embeddings as balance_embeddings
    from curate.steps.dedup.semantic import embeddings as semantic_embeddings
    texts = ["free prize call now", "see you at lunch", "win cash today", "meeting moved to 3pm"]
    df = _frame(texts)

    semantic_embeddings(df, texts, SemanticConfig(embedding=SPEC))
    assert spy == [WANT]

    spy.clear()
    res = DomainRelevance(exemplars=["win a prize"], threshold=-1, embedding=SPEC).process(df, _ctx())
    assert spy == [WANT, WANT] and res.kept.height == 4          # exemplars, then rows

    spy.clear()
    DiversityReport(clusters=2, embedding=SPEC).process(df, _ctx())
    assert spy == [WANT]

    spy.clear()
    check(texts[:2], ["free prize call today", "see you at dinner"], GateConfig(embedding=SPEC, meaning_checks=False))
    assert spy == [WANT]

    spy.clear()
    cfg = BalanceConfig(method="smote", embedding={**SPEC, "model": "bal/model"})
    X = balance_embeddings(df, cfg)
    assert spy == [("bal/model", 5, "cpu", "onnx-int8")]
    # SMOTE's realisation check embeds the generated texts with the same block
    spy.clear()
    pts = Points(A=np.array([0]), B=np.array([2]), W=np.array([0.3]), P=X[[0]].astype(np.float64),
                 C=np.array(["spam"]), RES=np.zeros(1))
    out = Realised([None], np.full(1, np.nan), ["not generated"], np.zeros(1, dtype=np.int64), [""])
    _judge(np.array([0]), {0: "free prize call tonight"}, pts, X.astype(np.float64), texts, set(), out, cfg, None)
    assert spy == [("bal/model", 5, "cpu", "onnx-int8")] and not np.isnan(out.sim[0])


def test_dedup_step_through_the_engine_uses_the_block(spy, tmp_path):
    from curate import Pipeline
    from curate.steps.dedup.step import Dedup
    rows = [{"text": t} for t in ("a cat sat", "a dog ran", "a cat sat!")]
    p = Pipeline(name="emb", sources=[{"inline": {"rows": rows}}],
                 steps=[Dedup(exact=False, semantic={"threshold": 0.99, "embedding": SPEC})],
                 workdir=str(tmp_path / ".c"), out_dir=str(tmp_path / "o"))
    r = p.run()
    assert spy == [WANT]
    assert r.manifest["steps"][0]["config"]["semantic"]["embedding"]["backend"] == "onnx-int8"


def test_static_and_onnx_give_different_relevance_on_a_real_encoder(tiny_st, cache):
    """Not a spy: the step's backend reaches the encoder (static vectors differ from ONNX's)."""
    _built_static(tiny_st)
    texts = ["free prize call now", "see you at lunch", "win cash today"]
    sims = {}
    for backend in ("onnx", "static"):
        step = DomainRelevance(exemplars=["win a prize"], threshold=-1,
                               embedding={"model": str(tiny_st), "backend": backend})
        sims[backend] = step.process(_frame(texts), _ctx()).kept["relevance"].to_numpy()
    ex = EmbedConfig(model=str(tiny_st), backend="static")
    want = (ex.embed(texts) @ ex.embed(["win a prize"]).T)[:, 0]
    assert np.allclose(sims["static"], want, atol=1e-4)
    assert not np.allclose(sims["static"], sims["onnx"], atol=1e-2)


def test_setup_embeddings_fills_the_cache(tiny_st, cache, monkeypatch):
    """`curate setup embeddings --static`: ONNX exported, static distilled (distillation stubbed
    with a random static model: the real one takes minutes), both found afterwards."""
    from typer.testing import CliRunner

    import model2vec.distill as D
    from curate.cli import app

    made = write_static(cache.parent / "made")
    from model2vec import StaticModel
    monkeypatch.setattr(D, "distill", lambda model_name, pca_dims=256, **kw: StaticModel.from_pretrained(str(made)))
    runner = CliRunner()
    res = runner.invoke(app, ["setup", "embeddings", "--model", str(tiny_st), "--static"])
    assert res.exit_code == 0, res.output
    assert "onnx ready at" in res.output and "static ready at" in res.output
    assert (E.static_model_dir(str(tiny_st)) / "meta.json").is_file()
    assert EmbedConfig(model=str(tiny_st), backend="static").embed(["x"]).shape == (1, 16)
    # nothing to do is a usage error, not a silent success
    res = runner.invoke(app, ["setup", "embeddings", "--no-onnx"])
    assert res.exit_code == 2 and "nothing to build" in res.output


def test_semantic_threshold_auto_follows_the_backend(tiny_st, cache, monkeypatch):
    from curate.steps.dedup.semantic import DEFAULT_THRESHOLD, STATIC_THRESHOLD
    assert SemanticConfig().threshold == DEFAULT_THRESHOLD == 0.9
    assert SemanticConfig(threshold="auto").threshold == 0.9
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        SemanticConfig(threshold=1.5)
    assert SemanticConfig(embedding={"backend": "onnx-int8"}).threshold == 0.9
    _built_static(tiny_st)
    static = {"model": str(tiny_st), "backend": "static"}
    assert SemanticConfig(embedding=static).threshold == STATIC_THRESHOLD != 0.9
    assert SemanticConfig(embedding=static, threshold=0.95).threshold == 0.95        # explicit wins
    assert SemanticConfig(embedding=static, embedding_column="v").threshold == 0.9   # own vectors
    # the resolved number is what the config dumps (and what the step's fingerprint hashes)
    assert SemanticConfig(embedding=static).model_dump()["threshold"] == STATIC_THRESHOLD
    monkeypatch.setenv(E.BACKEND_ENV, "static")                  # the operator's override counts too
    assert SemanticConfig(model=str(tiny_st)).threshold == STATIC_THRESHOLD
    with pytest.raises(ValidationError, match="threshold"):
        SemanticConfig(threshold="high")
