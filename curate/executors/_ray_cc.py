"""Connected components of a graph whose edges lie in many Ray objects, without gathering the
edges: each edge block is reduced by a task to its *star forest* (every node of the block →
the smallest node of its component there, one row per distinct node), and forests are merged
``fan_in`` at a time by further tasks, a tree of merges, until one forest remains.

Why it is exact: a star forest has the connectivity of the edges it came from, so the components
of a union of edge sets are those of the union of their forests, at every level of the tree.
Long chains cost nothing extra (each merge is a full union-find, not a propagation step).
Memory: a task holds its inputs' forests (two int64 per distinct node); the last merge, and the
driver that fetches it, hold one row per node of the graph (the candidate rows of dedup, not
their texts). Nothing here imports Ray at module level.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from curate.steps.dedup._clusters import connected_components


def star_forest(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """``{node, root}``: each distinct node of the edges ``(a[i], b[i])`` and the smallest node of
    its component."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if not len(a):
        return {"node": np.zeros(0, np.int64), "root": np.zeros(0, np.int64)}
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    labels = connected_components(len(nodes), inv[:len(a)], inv[len(a):])   # index of the min node
    return {"node": nodes, "root": nodes[labels]}


def forest_edges(a: np.ndarray, b: np.ndarray):
    """The star forest of edges ``(a, b)`` as an edge table ``(a = node, b = root)`` without the
    roots' own rows: the same connectivity in one row per non-root node."""
    import pyarrow as pa
    f = star_forest(a, b)
    child = f["node"] != f["root"]
    return pa.table({"a": pa.array(f["node"][child], pa.int64()), "b": pa.array(f["root"][child], pa.int64())})


def merge_edges(*tables):
    """The star forest (as :func:`forest_edges`) of the union of the edge tables (Arrow, int64
    columns ``a`` and ``b``): a shuffled edge block or an earlier merge."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return forest_edges(np.zeros(0, np.int64), np.zeros(0, np.int64))
    return forest_edges(np.concatenate([t.column("a").to_numpy() for t in tables]),
                        np.concatenate([t.column("b").to_numpy() for t in tables]))


def components(ray, edge_refs: list[Any], fan_in: int = 8) -> dict[str, np.ndarray]:
    """``{node, root}`` of the graph whose edge blocks are the Arrow tables behind ``edge_refs``
    (Ray object refs; a block may already be a star forest): merge tasks combine ``fan_in``
    blocks at a time, a tree of them, until one forest remains; only that comes to the caller."""
    if not edge_refs:
        return star_forest(np.zeros(0, np.int64), np.zeros(0, np.int64))
    merge = ray.remote(merge_edges).options(num_cpus=1)
    level = list(edge_refs)
    while True:
        level = [merge.remote(*level[i:i + fan_in]) for i in range(0, len(level), fan_in)]
        if len(level) == 1:
            break
    t = ray.get(level[0])
    a, b = t.column("a").to_numpy(), t.column("b").to_numpy()
    roots = np.unique(b)
    node, root = np.concatenate([a, roots]), np.concatenate([b, roots])
    order = np.argsort(node, kind="stable")
    return {"node": node[order], "root": root[order]}
