"""Dedup family.

* ``dedup`` (:mod:`.step`) — exact, near (MinHash-LSH) and semantic (embedding) duplicates in one
  step, applied in that order; every removal names the kept row (``duplicate_of``) and the
  similarity.
* ``leakage`` (:mod:`.leakage`) — test rows with exact/near twins in train after a split.
* ``decontaminate`` (:mod:`.decontaminate`) — training rows sharing long n-grams with eval sets.
"""
