"""Augmenter specs (`augment`, `balance.generator`) and `balance.llm` are typed: `validate` names
the file, line and nested key of a bad option, `schema` describes them, and the steps still get
the options as the plain dicts they consume."""
from __future__ import annotations

import json
import re
import textwrap
import warnings

import pytest

from curate.errors import PipelineErrors
from curate.pipeline import json_schema, load_yaml


def _write(tmp_path, steps: str):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""\
        name: specs
        sources:
          - inline: {rows: [{text: a b c, label: x}]}
        steps:
        """) + textwrap.indent(textwrap.dedent(steps), "  "))
    return path


def test_bad_augmenter_and_llm_options_name_line_and_key(tmp_path):
    path = _write(tmp_path, """\
        - balance:
            method: smote
            generator: {embedding_swap: {aug_p: 3}}
            llm: {model: m, backend: http}
        - augment:
            wordnet: {aug_p: 2}
            custom: [{nope: {}}]
        - balance:
            generator: {not_an_augmenter: {}}
            llm: {model: m, backend: gpt}
        """)
    with pytest.raises(PipelineErrors) as e:
        load_yaml(path)
    msg = str(e.value)
    assert re.search(r"p\.yaml:7 steps\[0\]\.balance\.generator\.(\w+\.)?embedding_swap\.aug_p", msg)
    assert "p.yaml:8 steps[0].balance.llm.http.base_url: required key is missing" in msg
    assert "p.yaml:10 steps[1].augment.wordnet.aug_p" in msg
    assert "p.yaml:11 steps[1].augment.custom[0]" in msg and "unknown augmenter 'nope'" in msg
    assert re.search(r"p\.yaml:13 steps\[2\]\.balance\.generator.*not_an_augmenter.*backtranslate", msg)
    assert "p.yaml:14" in msg and "backend must be transformers, vllm or http" in msg


def test_valid_specs_reach_the_steps_as_written_dicts(tmp_path):
    path = _write(tmp_path, """\
        - balance:
            method: smote
            generator: {wordnet: {aug_p: 0.3}}
            llm: {model: m, backend: http, base_url: "http://127.0.0.1:9/v1", temperature: 0.2}
        - augment:
            keyboard: {aug_char_p: 0.2}
            custom: [{ocr: {}}]
        """)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no serializer warnings for the dict values
        p = load_yaml(path)
        bal, aug = p.steps
        assert bal.config.generator == {"wordnet": {"aug_p": 0.3}}
        assert bal.config.llm == {"model": "m", "backend": "http", "base_url": "http://127.0.0.1:9/v1",
                                  "temperature": 0.2}
        assert bal.raw_config["llm"]["base_url"] == "http://127.0.0.1:9/v1"
        assert aug.config.custom == [{"ocr": {}}]
        assert aug.config.keyboard.aug_char_p == 0.2
    from curate.augmenters._base import build_augmenter
    assert build_augmenter(bal.config.generator).config.aug_p == 0.3
    assert [build_augmenter(s).name for s in aug.config.specs()] == ["keyboard", "ocr"]


def test_schema_describes_augmenter_and_llm_unions():
    schema = json_schema()
    props = schema["$defs"]["step:balance"]["properties"]
    gen = json.dumps(props["generator"]) + json.dumps(schema["$defs"])
    for name in ("embedding_swap_augmenter", "wordnet_augmenter", "backtranslate_augmenter"):
        assert f'"$ref": "#/$defs/{name}"' in gen
    assert schema["$defs"]["wordnet_augmenter"]["required"] == ["wordnet"]
    llm = {r["$ref"].rsplit("/", 1)[1] for r in props["llm"]["anyOf"][0]["oneOf"]}
    assert llm == {"TransformersLLM", "VllmLLM", "HttpLLM"}
    assert "base_url" in schema["$defs"]["HttpLLM"]["required"]
    assert "base_url" not in schema["$defs"]["TransformersLLM"]["properties"]


def test_typed_options_use_each_augmenters_own_config():
    """The union members and augment's per-augmenter fields are the registered classes' Config."""
    from curate.augmenters._base import _MODULES, augmenter_class
    from curate.augmenters.spec import BUILTIN_CONFIGS
    from curate.steps.augment import AugmentConfig
    assert set(BUILTIN_CONFIGS) == set(_MODULES)
    for name, config in BUILTIN_CONFIGS.items():
        assert augmenter_class(name).Config is config, name
        assert AugmentConfig.model_fields[name].annotation == config | None, name
