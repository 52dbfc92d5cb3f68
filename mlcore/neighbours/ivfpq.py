"""IVF-PQ: the compressed approximate index NeighbourIndex (mlcore/neighbours/index.py) builds for catalogues of
millions.

An inverted file (IVF) splits the unit vectors into ``nlist`` lists around k-means centroids, and a query scans only
the ``nprobe`` lists whose centroids lie nearest. Each vector is kept as a product-quantisation (PQ) code of its
residual from its list's centroid: ``pq_m`` sub-vectors of one byte each, 64 bytes for a 512-d vector (plus its
8-byte id) where HNSW keeps 2 KB of float32 and a graph. Scores are estimates from the codes; ``reranked`` scores a
query's best candidates again exactly from the original vectors when the caller can supply them.

Metric: ``IndexIVFPQ`` with ``METRIC_L2`` over the unit vectors, not ``METRIC_INNER_PRODUCT``. For unit vectors
``|q - x|^2 = 2 - 2 cos(q, x)``, so L2 ranks exactly as cosine and scores convert back (``cosine_of``); but FAISS's
L2 estimate from residual codes is the more faithful one here: on clustered 512-d vectors (bench/synthetic.py, 30k,
the same 64-byte codes and lists) recall@20 reached 0.79 with L2 against 0.66 with inner product, at any nprobe.
Built by hand rather than with ``index_factory`` so that the training sample, k-means iterations and PQ bits are
ours to bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

from mlcore.neighbours.unit_vectors import unit_rows

TRAIN_MAX_ROWS = 2**18  # the training sample, float32: 512 MiB at 512-d, 2 GiB at 2048-d, whatever the catalogue
TRAIN_ROWS_PER_LIST = 50  # training vectors sampled per list wanted
MIN_POINTS_PER_CENTROID = 39  # FAISS's own minimum for k-means; it warns on stderr below it
LISTS_PER_SQRT_N = 4  # nlist about 4 sqrt(n), the low end of FAISS's guideline (build cost grows with nlist)
COARSE_ITERATIONS = 10  # k-means on the sample; FAISS's default 25 took 30 s instead of 11 s at 100k
DIMS_PER_CODE_BYTE = 8  # pq_m = dim / 8: one byte codes 8 dimensions


@dataclass(frozen=True)
class IvfpqShape:
    """The sizes of an IVF-PQ index over ``n`` vectors: lists, PQ sub-quantizers and bits, training rows."""

    nlist: int
    pq_m: int
    pq_bits: int
    train_rows: int


def ivfpq_shape(n: int, dim: int, *, nlist: int | None = None, pq_m: int | None = None) -> IvfpqShape:
    """The shape of an IVF-PQ index of ``n`` vectors of ``dim``; ``nlist`` and ``pq_m`` fix those sizes.

    Without them: ``nlist`` about 4 sqrt(n) (4,000 at a million), at most one list per 39 training vectors;
    ``pq_m`` the divisor of ``dim`` nearest dim / 8 (64 at 512-d, 256 at 2048-d). The training sample is 50 rows per
    list, at least 12,800 and at most 2**18. Codes are 8 bits unless the sample is too small for 256 centroids per
    sub-quantizer (under about 10,000 vectors), when they get fewer bits.

    Raises:
        ValueError: when n is under 78 (two centroids of 39), ``nlist`` exceeds the training rows, or ``pq_m``
            does not divide ``dim``.
    """
    if n < 2 * MIN_POINTS_PER_CENTROID:
        raise ValueError(f"kind='ivfpq' needs at least {2 * MIN_POINTS_PER_CENTROID} vectors to train on, got {n}")
    wanted_lists = nlist or max(1, round(LISTS_PER_SQRT_N * math.sqrt(n)))
    train_rows = min(n, TRAIN_MAX_ROWS, TRAIN_ROWS_PER_LIST * max(wanted_lists, 256))
    if nlist is None:
        nlist = max(1, min(wanted_lists, train_rows // MIN_POINTS_PER_CENTROID))
    elif nlist > train_rows:
        raise ValueError(f"nlist={nlist} lists need at least as many training vectors; {train_rows} are used")
    if pq_m is None:
        divisors = [m for m in range(1, dim + 1) if dim % m == 0]
        pq_m = min(divisors, key=lambda m: (abs(m - dim / DIMS_PER_CODE_BYTE), -m))
    elif dim % pq_m:
        raise ValueError(f"pq_m={pq_m} must divide the vector dimension {dim}")
    pq_bits = min(8, math.floor(math.log2(train_rows / MIN_POINTS_PER_CENTROID)))
    return IvfpqShape(nlist=nlist, pq_m=pq_m, pq_bits=pq_bits, train_rows=train_rows)


def ivfpq_trained(unit_sample: np.ndarray, shape: IvfpqShape, *, seed: int) -> faiss.IndexIVFPQ:
    """An empty ``IndexIVFPQ`` (L2 over unit vectors) whose lists and codes are trained on ``unit_sample``."""
    dim = unit_sample.shape[1]
    index = faiss.IndexIVFPQ(faiss.IndexFlatL2(dim), dim, shape.nlist, shape.pq_m, shape.pq_bits)
    index.cp.niter = COARSE_ITERATIONS
    index.cp.seed = index.pq.cp.seed = seed
    # Without this FAISS keeps a table of nlist * pq_m * 256 floats to speed up L2 searches: 256 MB at a million
    # 512-d vectors, more than the codes themselves, for a saving of a fraction of a millisecond per query.
    index.use_precomputed_table = -1
    index.train(unit_sample)
    return index


def cosine_of(l2_squared: np.ndarray) -> np.ndarray:
    """Cosine similarities from squared L2 distances between unit vectors."""
    return (1.0 - l2_squared / 2.0).astype(np.float32)


def reranked(unit_queries: np.ndarray, candidates: np.ndarray, vectors_of_rows: Callable[[np.ndarray], np.ndarray],
             k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` best ``candidates`` rows (q, c) by exact cosine, from the vectors ``vectors_of_rows``
    returns for sorted unique rows (a memory map reads them in file order).

    Returns:
        (cosines float32 (q, k), rows int64 (q, k)), best first; -inf and -1 beyond a query's candidates.

    Raises:
        ValueError: when ``vectors_of_rows`` gives back an array that is not (rows, dim).
    """
    q, dim = unit_queries.shape
    wanted = np.unique(candidates[candidates >= 0])
    originals = np.asarray(vectors_of_rows(wanted))
    if originals.shape != (len(wanted), dim):
        raise ValueError(f"the original vectors of {len(wanted)} rows must have shape ({len(wanted)}, {dim}), "
                         f"got {originals.shape}")
    originals = unit_rows(originals)
    scores, rows = np.full((q, k), -np.inf, np.float32), np.full((q, k), -1, np.int64)
    for i, found in enumerate(candidates):
        found = found[found >= 0]
        exact = originals[np.searchsorted(wanted, found)] @ unit_queries[i]
        best = np.argsort(-exact, kind="stable")[:k]
        scores[i, :len(best)], rows[i, :len(best)] = exact[best], found[best]
    return scores, rows
