"""Honour the split the pipeline made: rows carrying a ``split`` column, or the one-file-per-split
outputs (``x.train.jsonl`` / ``x.validation.jsonl`` / ``x.test.jsonl``, NI ``task..._train.json``),
become train / validation / test; the runner never re-splits them at random. Guards that no
training row is, or derives from (``parent_id`` chain), a validation or test row."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from curate.errors import DataError
from curate.sink import split_path   # outputs name per-split files; the runner reads them the same way

#: Split values (and file-name tags) and the role each one plays.
ROLES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
         "dev": "validation", "test": "test"}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst")
_TAG = re.compile(r"(?:^|[._-])(train|validation|valid|val|dev|test)$")
#: Meta keys carried by loaded rows (stripped before datasets are built).
META = ("_split", "_id", "_parent")


def _strip_suffixes(name: str) -> str:
    for c in _COMPRESSION:
        if name.lower().endswith(c):
            name = name[:-len(c)]
            break
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


def file_role(path: Path) -> str | None:
    """The split a file name is tagged with (``x.test.jsonl``, ``task1_sms_validation.json``)."""
    m = _TAG.search(_strip_suffixes(path.name))
    return ROLES[m.group(1)] if m else None


def sibling_files(train: Path) -> dict[str, Path]:
    """The validation/test files the outputs wrote beside a train file: ``x.train.jsonl`` ->
    ``x.validation.jsonl`` / ``x.test.jsonl`` (also ``_train.json`` for NI task files)."""
    out: dict[str, Path] = {}
    if file_role(train) != "train":
        return out
    for role, names in (("validation", ("validation", "valid", "val", "dev")), ("test", ("test",))):
        for n in names:
            cand = train.with_name(re.sub(r"([._-])train(?=(\.[^.]+)*$)", rf"\g<1>{n}", train.name, count=1))
            if cand != train and cand.exists():
                out[role] = cand
                break
    return out


def resolve_train_path(path: str) -> Path:
    """The train path as given, or — when it does not exist but the outputs wrote one file per
    split — its ``.train`` file (``out/x.jsonl`` -> ``out/x.train.jsonl``)."""
    p = Path(path)
    if not p.exists():
        alt = split_path(p, "train")
        if alt.exists():
            return alt
    return p


def partition(rows: list[dict], where: str) -> dict[str, list[dict]] | None:
    """Rows carrying a split value, grouped by role; ``None`` when no row carries one."""
    values = [r.get("_split") for r in rows]
    if all(v is None or v == "" for v in values):
        return None
    out: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for r, v in zip(rows, values):
        if v is None or v == "":
            raise DataError(f"{r.get('row_source', where)}: row has no split value while others do; "
                            "every row must carry one (or none)")
        role = ROLES.get(str(v).lower())
        if role is None:
            raise DataError(f"{r.get('row_source', where)}: unknown split value {v!r}; expected one of "
                            f"{', '.join(sorted(ROLES))}")
        out[role].append(r)
    return out


def drop_derived_eval_rows(rows: list[dict]) -> tuple[list[dict], int]:
    """Evaluation rows that are copies, augmentations or SMOTE rows (a ``parent_id``) are left out:
    metrics are measured on real rows only. Returns (kept, dropped count)."""
    kept = [r for r in rows if not r.get("_parent")]
    return kept, len(rows) - len(kept)


def _roots(rows: list[dict]) -> dict[str, str]:
    """id -> id at the end of its parent_id chain (over every loaded row)."""
    parent = {str(r["_id"]): str(r["_parent"]) for r in rows if r.get("_id") and r.get("_parent")}
    roots: dict[str, str] = {}
    for r in rows:
        i = r.get("_id")
        if not i:
            continue
        cur, seen = str(i), set()
        while cur in parent and cur not in seen:
            seen.add(cur)
            cur = parent[cur]
        roots[str(i)] = cur
    return roots


def leak_check(train: list[dict], evals: dict[str, list[dict]]) -> dict[str, Any]:
    """Fail when a training row is, or derives from, an evaluation row (same id, or a ``parent_id``
    chain reaching one); count exact-text overlaps (the ``leakage`` step's job) for the metrics."""
    all_rows = train + [r for rs in evals.values() for r in rs]
    roots = _roots(all_rows)

    def root(r: dict) -> str | None:
        i = r.get("_id")
        if i:
            return roots.get(str(i), str(i))
        return str(r["_parent"]) if r.get("_parent") else None

    report: dict[str, Any] = {}
    for role, rows in evals.items():
        eval_roots = {root(r) for r in rows} - {None}
        bad = [r for r in train if root(r) in eval_roots]
        if bad:
            r = bad[0]
            raise DataError(
                f"{len(bad)} training row(s) are {role} rows or derive from one (e.g. {r.get('row_source')}: id "
                f"{r.get('_id')!r}, parent {r.get('_parent')!r}); run `split` with lineage before or after "
                "balance/augment so copies stay in their original's split")
        key = "text" if train and "text" in train[0] else ("prompt" if train and "prompt" in train[0] else None)
        if key:
            eval_texts = {str(r.get(key)) for r in rows}
            report[f"train_{role}_exact_overlap"] = sum(str(r.get(key)) in eval_texts for r in train)
    return report


def strip_meta(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in META} for r in rows]
