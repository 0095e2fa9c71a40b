"""vLLM backend (optional extra ``curate-toolkit[vllm]``): continuous batching and paged
attention do the packing for us; we only map the interface and sampling params."""
from __future__ import annotations

from typing import Sequence

from curate.errors import CurateError
from curate.llm.base import LLM, BackendSpec, Generation, Prompt, SamplingParams
from curate.registry import register_llm_backend


@register_llm_backend("vllm")
class VLLM(LLM):
    """``vllm.LLM`` behind the curate interface (chat prompts go through ``LLM.chat``)."""

    def __init__(self, spec: BackendSpec) -> None:
        try:
            import vllm
        except ImportError as e:
            raise CurateError("backend vllm needs the vllm package: pip install 'curate-toolkit[vllm]' "
                              "(or use backend: transformers / http)") from e
        self.spec = spec
        kw = dict(spec.extra.get("engine_args", {}))
        if spec.dtype:
            kw["dtype"] = spec.dtype
        self.engine = vllm.LLM(model=spec.model, **kw)
        self._vllm = vllm

    def _params(self, p: SamplingParams, seed: int):
        return self._vllm.SamplingParams(n=p.n, temperature=p.temperature, top_p=p.top_p if p.temperature > 0 else 1.0,
                                         max_tokens=p.max_new_tokens, seed=seed, stop=list(p.stop) or None,
                                         ignore_eos=p.ignore_eos)

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        # per-prompt seeds make each prompt's samples independent of the rest of the batch
        sps = [self._params(params, params.seed * 1_000_003 + i) for i in range(len(prompts))]
        chat = self.spec.chat or any(not isinstance(p, str) for p in prompts)
        if chat:
            msgs = [[{"role": "user", "content": p}] if isinstance(p, str) else list(p) for p in prompts]
            outs = self.engine.chat(msgs, sps, use_tqdm=False)
        else:
            outs = self.engine.generate(list(prompts), sps, use_tqdm=False)
        res = []
        for o in outs:
            n_prompt = len(o.prompt_token_ids or [])
            res.append([Generation(c.text, n_prompt, len(c.token_ids),
                                   "stop" if c.finish_reason == "stop" else "length") for c in o.outputs])
        return res

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        tok = self.engine.get_tokenizer()
        return [len(x) for x in tok(list(texts), add_special_tokens=False)["input_ids"]]
