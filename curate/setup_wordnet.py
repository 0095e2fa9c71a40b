"""One-time WordNet setup for NLTK without a download (`curate setup wordnet`).

Debian's ``wordnet-base`` (+ ``wordnet-sense-index``) installs the WordNet 3.0 database under
``/usr/share/wordnet``. NLTK will not read it there (it only looks under its data roots and
refuses symlinks out of them) and wants a ``lexnames`` file Debian does not ship. This copies
the database to ``<NLTK data dir>/corpora/wordnet`` and writes ``lexnames`` (the 45 rows of the
lexnames(5WN) man page), after which ``from nltk.corpus import wordnet`` works offline.

    apt-get install -y wordnet-base wordnet-sense-index && curate setup wordnet
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from curate.errors import CurateError
from curate.extras import require

DEBIAN_WORDNET = Path("/usr/share/wordnet")
APT_HINT = "apt-get update && apt-get install -y wordnet-base wordnet-sense-index"

#: lexnames(5WN): file number, lexicographer file name, syntactic category (1 n, 2 v, 3 adj, 4 adv).
LEXNAMES = [
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
]
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
REQUIRED = ("index.noun", "data.noun", "index.verb", "data.verb", "index.adj", "data.adj",
            "index.adv", "data.adv", "noun.exc", "verb.exc", "adj.exc", "adv.exc")


def lexnames_text() -> str:
    return "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def default_nltk_dir() -> Path:
    """First directory of ``$NLTK_DATA`` if set, else ``~/nltk_data`` (both are NLTK data roots)."""
    env = os.environ.get("NLTK_DATA")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path.home() / "nltk_data"


def wordnet_dir(target_dir: str | Path | None = None) -> Path:
    return Path(target_dir or default_nltk_dir()) / "corpora" / "wordnet"


def install_wordnet(target_dir: str | Path | None = None, source: str | Path = DEBIAN_WORDNET) -> Path:
    """Copy the Debian WordNet database into an NLTK data root and add ``lexnames``.

    ``target_dir`` is the NLTK data root (default ``$NLTK_DATA`` or ``~/nltk_data``); returns
    the ``corpora/wordnet`` folder. Idempotent."""
    src = Path(source)
    missing = [f for f in REQUIRED if not (src / f).exists()]
    if missing:
        raise CurateError(f"WordNet database not found in {src} (missing {missing[0]}); install it with "
                          f"`{APT_HINT}`")
    dest = wordnet_dir(target_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file():
            shutil.copyfile(f, dest / f.name)        # real copies: NLTK refuses symlinks out of its roots
    (dest / "lexnames").write_text(lexnames_text(), encoding="utf-8")
    check_wordnet(dest.parent.parent)
    return dest


def load_wordnet(nltk_dir: str | Path | None = None):
    """A WordNet reader over ``<nltk_dir>/corpora/wordnet`` (no download). NLTK only reads
    under its data roots, so ``nltk_dir`` is added to ``nltk.data.path`` if it is not there."""
    require("nltk", extra="augment")
    import nltk
    require("nltk", extra="augment")
    from nltk.corpus.reader.wordnet import WordNetCorpusReader
    root = wordnet_dir(nltk_dir)
    data_root = str(root.parent.parent)
    if data_root not in nltk.data.path:
        nltk.data.path.append(data_root)
    if not (root / "lexnames").exists():
        raise CurateError(f"WordNet is not set up in {root}; run `curate setup wordnet` "
                          f"(after `{APT_HINT}`)")
    import warnings
    with warnings.catch_warnings():           # "multilingual functions are not available": no OMW, by design
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(str(root), None)


def check_wordnet(nltk_dir: str | Path | None = None) -> int:
    """Load WordNet from ``nltk_dir`` and return the number of synsets of 'dog' (sanity check)."""
    wn = load_wordnet(nltk_dir)
    n = len(wn.synsets("dog"))
    if n == 0:
        raise CurateError(f"WordNet in {wordnet_dir(nltk_dir)} answers no synsets; reinstall it")
    return n
