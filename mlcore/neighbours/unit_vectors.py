"""Unit-length float32 rows from any float input, and exact cosine top-k over arrays too large to copy whole.

Both read their input a block of rows at a time, so a float16 memory map of millions of vectors is never held as a
float32 copy: the neighbour index (mlcore/neighbours/index.py) uses them to build, to measure its recall and to re-rank.
"""

from __future__ import annotations

import faiss
import numpy as np

BLOCK = 65536  # rows normalised at a time: 128 MiB of float32 at 512-d


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """A float32 copy of ``vectors`` with every row scaled to length 1 (an all-zero row stays zero: similarity 0).

    Raises:
        ValueError: on NaN or infinite values.
    """
    unit = np.array(vectors, dtype=np.float32, order="C")
    if not np.isfinite(unit).all():
        raise ValueError("vectors contain NaN or infinite values (or values beyond float32)")
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    unit /= np.where(norms > 0, norms, 1.0)
    return unit


def exact_top_k(unit_queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``vectors`` (n, dim), any float dtype, most cosine-similar to each unit query (q, dim).

    Returns:
        (cosines float32 (q, k), rows int64 (q, k)), best first; row -1 and score -inf where n < k.
    """
    best = faiss.ResultHeap(len(unit_queries), k, keep_max=True)
    for start in range(0, len(vectors), BLOCK):
        block = unit_rows(vectors[start:start + BLOCK])
        scores, rows = faiss.knn(unit_queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
        best.add_result(scores, rows + start)
    best.finalize()
    missing = best.I < 0
    return np.where(missing, -np.inf, best.D).astype(np.float32), np.where(missing, -1, best.I)
