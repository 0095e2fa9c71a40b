"""Typed specs for the text generators that ``augment`` and ``balance`` take as options, so
``curate validate`` and ``curate schema`` check them like any other option.

* :data:`AugmenterSpec` — ``{name: {options}}`` (or a bare ``name``) for a built-in augmenter:
  a union discriminated by the name, each member the augmenter's own ``Config``, so an error
  points at ``generator.embedding_swap.aug_p``. Unknown names list the known ones.
* :data:`LLMSpec` — the ``llm:`` mapping (backend, model, sampling): a union discriminated by
  ``backend`` (``transformers`` when absent), so ``base_url`` is only accepted for ``http``.

Both validate to a plain ``dict`` (the options as written, checked), which is what the steps and
:func:`curate.augmenters._base.build_augmenter` consume and what manifests and cache keys record.
"""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field,
                      PlainSerializer, Tag, create_model)

#: The validated values are plain dicts: serialise them as they are (not as the union's models).
_AS_IS = PlainSerializer(lambda v: v, return_type=Any)

from curate.augmenters.backtranslate import BacktranslateConfig
from curate.augmenters.embedding_swap import EmbeddingSwapConfig
from curate.augmenters.noise import CharNoiseConfig, NoiseConfig, WordDropoutConfig
from curate.augmenters.wordnet import WordNetConfig

#: Built-in augmenter name -> its config model.
BUILTIN_CONFIGS: dict[str, type[BaseModel]] = {
    "backtranslate": BacktranslateConfig, "embedding_swap": EmbeddingSwapConfig,
    "wordnet": WordNetConfig, "char_noise": CharNoiseConfig, "keyboard": NoiseConfig,
    "ocr": NoiseConfig, "word_dropout": WordDropoutConfig,
}


def _spec_name(v: Any) -> str | None:
    """The augmenter name of ``{name: options}`` / ``name`` (None: not a spec -> a clear error)."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and len(v) == 1:
        return str(next(iter(v)))
    return None


def _unwrap(name: str):
    def unwrap(v: Any) -> Any:
        if isinstance(v, str):
            return {}
        opts = v[name]
        return {} if opts is None else opts
    return unwrap


def _member(name: str, config: type[BaseModel]) -> Any:
    """One union member: unwraps ``{name: options}``, validates with ``config``, gives back
    ``{name: options as written}``; its JSON Schema is the ``{name: {...}}`` object."""
    wrapper = create_model(f"{name}_augmenter", __config__=ConfigDict(extra="forbid"),
                           **{name: (config, Field(description=f"Options of the `{name}` augmenter."))})

    def to_dict(model: BaseModel) -> dict[str, Any]:
        return {name: model.model_dump(mode="json", exclude_unset=True)}
    return Annotated[config, BeforeValidator(_unwrap(name), json_schema_input_type=wrapper),
                     AfterValidator(to_dict), Tag(name)]


#: ``{name: {options}}`` (or a bare name) of a built-in augmenter, validated; the value is the
#: dict as written.
AugmenterSpec = Annotated[
    Union[tuple(_member(n, c) for n, c in BUILTIN_CONFIGS.items())],  # type: ignore[misc]
    Discriminator(_spec_name, custom_error_type="unknown_augmenter",
                  custom_error_message="an augmenter is written as {name: {options}} with name one of "
                                       + ", ".join(BUILTIN_CONFIGS)),
    _AS_IS]


def check_custom_spec(v: Any) -> Any:
    """A registered (possibly plug-in) augmenter spec: known name, options valid for its Config."""
    from curate.augmenters._base import augmenter_class
    name = _spec_name(v)
    if name is None:
        raise ValueError(f"an augmenter is written as {{name: {{options}}}}, got {v!r}")
    opts = {} if isinstance(v, str) else (v[name] or {})
    try:
        cls = augmenter_class(name)
    except Exception as e:
        raise ValueError(str(e)) from None
    cfg = cls.Config.model_validate(opts)
    return {name: cfg.model_dump(mode="json", exclude_unset=True)}


#: ``{name: {options}}`` of any registered augmenter (plug-ins included), checked by its Config.
CustomAugmenterSpec = Annotated[dict[str, Any] | str, AfterValidator(check_custom_spec)]


from curate.llm.spec import HttpLLM, LLMSpec, TransformersLLM, VllmLLM  # noqa: E402,F401  (re-exported)
