"""Connected components on Ray (a tree of star-forest merges over edge blocks) are the local
union-find's, on graphs of long chains; dedup over chains of near duplicates that cross many
blocks gives the local clusters, keepers and rejects."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from curate.steps.dedup._clusters import connected_components


def _partition(labels: dict[int, int]) -> set[frozenset[int]]:
    comps: dict[int, set[int]] = {}
    for node, root in labels.items():
        comps.setdefault(root, set()).add(node)
    return {frozenset(c) for c in comps.values()}


def test_components_of_long_chains_match_local_union_find(ray_cluster):
    """Chains of 2,000 nodes (edges shuffled over 9 blocks, so no block sees more than a few
    links in a row), a star, pairs and isolated nodes: same components, each labelled by its
    smallest node."""
    import ray

    from curate.executors._ray_cc import components
    rng = np.random.default_rng(0)
    perm = rng.permutation(9000)                  # chains over scattered node numbers
    edges = [(perm[i], perm[i + 1]) for start in (0, 2000, 4000) for i in range(start, start + 1999)]
    edges += [(perm[6000], perm[j]) for j in range(6001, 6500)]      # a star
    edges += [(perm[j], perm[j + 1]) for j in range(7000, 8000, 2)]  # pairs
    a, b = np.array(edges).T
    order = rng.permutation(len(a))
    a, b = a[order], b[order]
    refs = [ray.put(pa.table({"a": pa.array(x, pa.int64()), "b": pa.array(y, pa.int64())}))
            for x, y in zip(np.array_split(a, 9), np.array_split(b, 9))]
    got = components(ray, refs, fan_in=2)               # a tree of 3 levels of merges
    mine = dict(zip(got["node"].tolist(), got["root"].tolist()))
    local = connected_components(9000, a, b)
    want = {i: int(l) for i, l in enumerate(local) if l >= 0}
    assert _partition(mine) == _partition(want)
    assert len(_partition(want)) == 3 + 1 + 500
    for comp in _partition(mine):                       # each labelled by its smallest node
        assert {mine[n] for n in comp} == {min(comp)}
    assert components(ray, [])["node"].size == 0


def test_keys_cut_by_sorted_block_boundaries_are_joined():
    """The sort shuffle's blocks cut keys anywhere: a key spread over three blocks, and one with
    a single row on each side of a boundary, are each one component once the blocks' edges are
    merged; a key alone at a block's end joins nothing."""
    import pyarrow as pa

    from curate.executors._ray_cc import merge_edges, star_forest
    from curate.executors._ray_dedup import _edges_in_sorted

    def block(keys, pos):
        return pa.table({"s": pa.array([1] * len(keys), pa.int8()), "key": pa.array(keys, pa.uint64()),
                         "pos": pa.array(pos, pa.int64())})
    blocks = [block([1, 2, 5, 5], [10, 11, 3, 7]),      # key 5 continues ...
              block([5, 5, 5], [1, 8, 9]),              # ... over this whole block ...
              block([5, 6, 9], [2, 4, 12]),             # ... and ends here; 6 is alone
              block([9, 13, 13], [0, 5, 6])]            # 9: one row on each side of the cut
    f = merge_edges(*[_edges_in_sorted(b) for b in blocks])
    forest = star_forest(f.column("a").to_numpy(), f.column("b").to_numpy())
    comp = {}
    for node, root in zip(forest["node"].tolist(), forest["root"].tolist()):
        if node >= 0:
            comp.setdefault(root, set()).add(node)
    groups = sorted(sorted(c) for c in comp.values() if len(c) > 1)
    assert groups == [[0, 12], [1, 2, 3, 7, 8, 9], [5, 6]]


def _chain_corpus(folder, chains: int = 5, length: int = 60, noise: int = 150):
    """Chains of near duplicates (row k of a chain differs from row k-1 in one word, so only
    neighbours pass the threshold), exact copies inside chains, and unrelated rows; shuffled."""
    rng = np.random.default_rng(3)
    rows = []
    for c in range(chains):
        words = [f"c{c}w{i}" for i in range(40)]
        for k in range(length):
            words = list(words)
            words[k % 40] = f"c{c}r{k}"
            rows.append({"text": " ".join(words), "label": "ab"[k % 2]})
            if k % 9 == 0:
                rows.append(dict(rows[-1]))
    rows += [{"text": " ".join(f"n{i}x{j}" for j in range(12)), "label": "a"} for i in range(noise)]
    for t in range(3):            # exact copies: keys with more rows than a shuffled block holds
        rows += [{"text": f"the same copied text number {t} again", "label": "ab"[i % 2]} for i in range(60)]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(3):
        (folder / f"p{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[k::3]))
    return folder


@pytest.mark.slow
def test_dedup_on_chains_across_blocks(run_both, tmp_path):
    """Long chains of near duplicates spread over many blocks of 24 rows: the components, their
    keepers (keep: longest, ties by order) and every reject's pointer are the local ones."""
    folder = _chain_corpus(tmp_path / "chains")
    doc = {"name": "chains", "seed": 5, "batch_size": 24,
           "sources": [{"jsonl": {"name": "docs", "path": f"{folder}/p*.jsonl"}}],
           "steps": [{"dedup": {"keep": "longest", "near": {"threshold": 0.8, "ngram": 3}}}],
           "outputs": [{"jsonl": {"path": "{out}/all.jsonl"}}]}
    local, ray = run_both(doc)
    st = ray.manifest["steps"][0]["stats"]
    assert st["ray"]["groups"] >= 2 and st["ray"]["blocks"] >= 10
    assert st["near"]["clusters"] == local.manifest["steps"][0]["stats"]["near"]["clusters"] <= 10
    assert st["near"]["duplicates"] > 200 and st["exact"]["duplicates"] > 20
