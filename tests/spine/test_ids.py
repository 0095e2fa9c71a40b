"""Content ids survive every character a text can hold: JSON leaves U+0085, U+2028 and U+2029
raw, and a line split that breaks on them would give a row two ids (a shape error downstream)."""
from __future__ import annotations

import polars as pl

from curate.records import content_ids


def test_ids_one_per_row_whatever_the_characters():
    texts = ["a\x85b", "c\u2028d", "e\u2029f", "g\x1ch", "i\rj", "k\nl", "plain", "plain"]
    ids = content_ids(pl.DataFrame({"text": texts}))
    assert ids.len() == len(texts)
    assert ids.n_unique() == len(texts)              # the repeat of "plain" gets "<id>-1"
    assert ids[7] == ids[6] + "-1"
    # the id is the content's: the same text gets the same id in another frame
    assert content_ids(pl.DataFrame({"text": ["c\u2028d"]}))[0] == ids[1]
