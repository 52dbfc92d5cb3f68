"""Nearest neighbours by cosine similarity over feature vectors, with FAISS.

Vectors are L2-normalised on the way in, so cosine similarity is the inner product: exact search is
``IndexFlatIP``, approximate search ``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``, and for catalogues of millions
a compressed ``IndexIVFPQ`` (mlcore/neighbours/ivfpq.py). Keys are int64 galaxy ids, kept beside the index (FAISS itself
numbers rows 0..n-1).

Threads: a single query (or a handful) runs on one OpenMP thread. FAISS parallelises over queries, so more threads
would not speed one query up, and on a small shared machine a parallel region waits for its slowest thread, which
turns a 0.3 ms query into milliseconds whenever the web server and worker are busy. Building and large batches of
queries use ``threads`` (None: FAISS's default, one per core). Thread counts are set per call and restored after,
and in libgomp only for the calling thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager

import faiss
import numpy as np

from mlcore.neighbours.checks import check_params, checked_data, checked_k
from mlcore.neighbours.index_file import index_file_read, index_file_write
from mlcore.neighbours.ivfpq import cosine_of, ivfpq_shape, ivfpq_trained, reranked
from mlcore.neighbours.unit_vectors import exact_top_k, unit_rows

RECALL_QUERIES = 1000
RECALL_K = 20
RERANK_BLOCK = 100  # queries re-ranked together while measuring recall: bounds the original rows gathered at once
FEW_QUERIES = 16  # up to this many queries run on one thread (see the module docstring)
ADD_CHUNK = 65536  # rows normalised and added at a time, so fit never holds a second full-size float32 copy


class NeighbourIndex:
    """Cosine-similarity nearest neighbours of feature vectors keyed by galaxy id.

    Args:
        kind: "exact" (``IndexFlatIP``: every vector compared, recall 1), "hnsw" (``IndexHNSWFlat``: a graph walk,
            about 1 ms at 300k), "ivfpq" (``IndexIVFPQ``: 64-byte codes of 512-d vectors in about 4 sqrt(n) lists,
            for millions of vectors; see mlcore/neighbours/ivfpq.py) or "auto" (exact up to ``exact_max`` vectors,
            ivfpq from ``ivfpq_min``, hnsw between).
        exact_max: the largest index "auto" builds exact. Brute force costs about 0.12 ms per 1,000 512-d vectors
            on one thread (about 1.2 ms at 10k, 4 ms at 30k), while HNSW builds 10k vectors in a few seconds.
        ivfpq_min: the smallest index "auto" builds ivfpq (up to exact_max it is still exact). HNSW holds every vector
            as float32 beside its graph, about 2.3 GB per million 512-d vectors, and its build time grows faster
            than n; IVF-PQ saves 89 bytes per vector (keys included) and built a million in 233 s against HNSW's
            407 s on 2 cores (bench/index_scale.py).
        hnsw_m: graph neighbours per vector (memory: about 8 * hnsw_m bytes per vector beside the vectors).
        ef_construction: candidate list while building. 128 rather than 64 costs 1.5-2x the build time but
            gives a better graph: at 300k, recall@20 0.997 instead of 0.989 at ef_search 96, and fewer queries
            whose walk ends in the wrong region (recall 0) -- the rare galaxies an expert most wants neighbours of.
        ef_search: candidate list while searching (at least k is used); raises recall and latency together. At 300k
            with the defaults: 64 -> recall 0.992, 96 -> 0.997, 128 -> 0.999, p50 0.6 / 0.8 / 1.0 ms.
        nlist, pq_m: ivfpq lists and bytes per code; None (the default) sizes them from the data: about
            4 sqrt(n) lists, and dim / 8 sub-quantizers of 8 bits (the nearest divisor of dim when 8 does not
            divide it). pq_m must divide the dimension.
        nprobe: ivfpq lists scanned per query; raises recall and latency together. At a million clustered 512-d
            vectors (4,000 lists), re-ranked: 32 -> recall@20 0.918, 64 -> 0.981, 128 -> 0.993; p50 1.6 / 2.2 /
            3.2 ms (bench/index_scale.py). Missed lists, not coarse codes, limit recall there.
        rerank: ivfpq candidates re-scored exactly when a search is given ``rerank_from`` (at least 2 k are). At a
            million, nprobe 64: 100 -> 0.981, 200 -> 0.986, for 0.5 ms more.
        seed: picks the vectors recall is measured on, the HNSW level draws and the ivfpq training sample and
            k-means (a multi-threaded build is still not bit-for-bit reproducible).
        threads: OpenMP threads for building and for batches of more than 16 queries; None leaves FAISS's default.

    Attributes (after ``fit``):
        kind_: "exact", "hnsw" or "ivfpq".
        n_, dim_: how many vectors, of what dimension.
        keys_: int64 (n_,) key of each row.
        build_seconds_: time to normalise, train on (ivfpq) and add the vectors.
        recall_at_20_: for hnsw and ivfpq, mean recall@20 against exact search with up to 1000 stored vectors as
            queries (each query's own key left out, as ``similar`` leaves out the galaxy itself); 1.0 for exact.
        reranked_recall_at_20_: for ivfpq, the same with ``rerank_from`` given; None for the other kinds.
    """

    def __init__(self, *, kind: str = "auto", exact_max: int = 10_000, ivfpq_min: int = 1_000_000,
                 hnsw_m: int = 32, ef_construction: int = 128, ef_search: int = 96, nlist: int | None = None,
                 pq_m: int | None = None, nprobe: int = 64, rerank: int = 100, seed: int = 0,
                 threads: int | None = None) -> None:
        self.kind = kind
        self.exact_max = exact_max
        self.ivfpq_min = ivfpq_min
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.nlist = nlist
        self.pq_m = pq_m
        self.nprobe = nprobe
        self.rerank = rerank
        self.seed = seed
        self.threads = threads

    def __repr__(self) -> str:
        fitted = f", n_={self.n_}, kind_={self.kind_!r}" if hasattr(self, "index_") else ""
        return f"NeighbourIndex(kind={self.kind!r}{fitted})"

    def fit(self, vectors, keys) -> NeighbourIndex:
        """Index ``vectors`` (n, dim), any float dtype (a float16 memmap is fine), under ``keys`` int (n,).

        Returns:
            self.

        Raises:
            ValueError: on an unknown kind or a parameter out of range (naming it), empty or non-2-D vectors, keys
                not (n,) unique integers, NaN/inf, or for ivfpq fewer than 78 vectors or a pq_m not dividing dim.
        """
        check_params(self._params())
        vectors, keys = checked_data(vectors, keys)
        n, dim = vectors.shape
        kind = self.kind if self.kind != "auto" else (
            "exact" if n <= self.exact_max else "ivfpq" if n >= self.ivfpq_min else "hnsw")
        started = time.perf_counter()
        with _omp_threads(self.threads):
            if kind == "exact":
                index = faiss.IndexFlatIP(dim)
            elif kind == "hnsw":
                index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = self.ef_construction
                index.hnsw.rng = faiss.RandomGenerator(self.seed)
            else:
                shape = ivfpq_shape(n, dim, nlist=self.nlist, pq_m=self.pq_m)
                # A bounded sample, read in row order (a memory map then reads forward): training memory stays
                # the same however large the catalogue.
                sample = np.sort(np.random.default_rng(self.seed).choice(n, shape.train_rows, replace=False))
                index = ivfpq_trained(unit_rows(vectors[sample]), shape, seed=self.seed)
            for start in range(0, n, ADD_CHUNK):
                index.add(unit_rows(vectors[start:start + ADD_CHUNK]))
        self.build_seconds_ = time.perf_counter() - started
        self.index_ = index
        self.kind_, self.n_, self.dim_, self.keys_ = kind, n, dim, keys
        self._set_search_depth()
        self.recall_at_20_, self.reranked_recall_at_20_ = (1.0, None) if kind == "exact" else \
            self._measured_recall(vectors)
        return self

    def search(self, vectors, k: int, *, rerank_from: Callable[[np.ndarray], np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar stored vectors to each row of ``vectors`` (q, dim).

        Args:
            rerank_from: for an ivfpq index, a function from keys (int64 (m,)) to their original vectors (m, dim),
                such as ``FeatureStore.get``: the best ``rerank`` candidates are then scored exactly from them,
                raising recall (``reranked_recall_at_20_``) and making scores exact cosines. Exact and hnsw
                indexes score exactly already and ignore it.

        Returns:
            (scores float32 (q, k), keys int64 (q, k)): cosine similarities, best first. When fewer than k vectors
            are stored (or an approximate search finds fewer), the rest of the row is key -1 with score -inf.

        Raises:
            ValueError: when unfitted, k < 1, vectors is not (q, dim_) or holds NaN/inf, or ``rerank_from`` gives
                back vectors of the wrong shape.
        """
        self._check_fitted()
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim_:
            raise ValueError(f"vectors must have shape (q, {self.dim_}), got {vectors.shape}")
        k = checked_k(k)
        found = min(k, self.n_)  # FAISS would pad too, but sizing its heaps to a huge k costs time
        with _omp_threads(1 if len(vectors) <= FEW_QUERIES else self.threads):
            if self.kind_ == "ivfpq" and rerank_from is not None:
                scores, rows = self._reranked_search(unit_rows(vectors), found,
                                                     lambda wanted: rerank_from(self.keys_[wanted]))
            else:
                scores, rows = self._search_rows(unit_rows(vectors), found)
        missing = rows < 0
        keys = np.full((len(vectors), k), -1, np.int64)
        keys[:, :found] = np.where(missing, -1, self.keys_[np.where(missing, 0, rows)])
        padded = np.full((len(vectors), k), -np.inf, np.float32)
        padded[:, :found] = np.where(missing, -np.inf, scores)
        return padded, keys

    def similar(self, vector, k: int, *, exclude_key: int | None = None,
                rerank_from: Callable[[np.ndarray], np.ndarray] | None = None) -> list[tuple[int, float]]:
        """The ``k`` (key, cosine similarity) most like one ``vector`` (dim,), best first, without ``exclude_key``.

        Fewer than k pairs come back when the index holds fewer vectors. This is the one path for "galaxies like
        this one": pass the galaxy's own vector and its key as ``exclude_key``. ``rerank_from`` as in ``search``.

        Raises:
            ValueError: when unfitted, k < 1, or vector is not (dim_,).
        """
        vector = np.asarray(vector)
        if vector.ndim != 1:
            raise ValueError(f"vector must be one-dimensional (dim,), got shape {vector.shape}")
        k = checked_k(k)
        scores, keys = self.search(vector[None, :], k + 1 if exclude_key is not None else k, rerank_from=rerank_from)
        pairs = [(int(key), float(score)) for key, score in zip(keys[0], scores[0], strict=True)
                 if key != -1 and key != exclude_key]
        return pairs[:k]

    def save(self, path: str | os.PathLike) -> None:
        """Write the index, keys and parameters to the single file ``path``, atomically (temporary name, replace).

        Raises:
            ValueError: when unfitted.
        """
        self._check_fitted()
        header = {"params": self._params(), "kind": self.kind_, "n": self.n_, "dim": self.dim_,
                  "build_seconds": self.build_seconds_, "recall_at_20": self.recall_at_20_,
                  "reranked_recall_at_20": self.reranked_recall_at_20_}
        index_file_write(path, header=header, keys=self.keys_, index=self.index_)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NeighbourIndex:
        """The index ``save`` wrote to ``path``.

        Raises:
            FileNotFoundError: when ``path`` does not exist.
            ValueError: when ``path`` is not a saved index, or is truncated or damaged.
        """
        header, keys, index = index_file_read(path)
        try:
            fitted = cls(**header["params"])
            fitted.build_seconds_, fitted.recall_at_20_ = header["build_seconds"], header["recall_at_20"]
            fitted.reranked_recall_at_20_ = header.get("reranked_recall_at_20")  # absent in files before ivfpq
            fitted.kind_ = header["kind"]
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a readable saved NeighbourIndex: {error!r} in its header") from None
        fitted.index_, fitted.n_, fitted.dim_, fitted.keys_ = index, len(keys), index.d, keys
        fitted._set_search_depth()
        return fitted

    def _params(self) -> dict:
        return {"kind": self.kind, "exact_max": self.exact_max, "ivfpq_min": self.ivfpq_min, "hnsw_m": self.hnsw_m,
                "ef_construction": self.ef_construction, "ef_search": self.ef_search, "nlist": self.nlist,
                "pq_m": self.pq_m, "nprobe": self.nprobe, "rerank": self.rerank, "seed": self.seed,
                "threads": self.threads}

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise ValueError("this NeighbourIndex is not fitted yet: call fit(vectors, keys) first")

    def _set_search_depth(self) -> None:
        if self.kind_ == "hnsw":
            self.index_.hnsw.efSearch = self.ef_search
        elif self.kind_ == "ivfpq":
            self.index_.nprobe = min(self.nprobe, self.index_.nlist)

    def _search_rows(self, unit_queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, rows) of the index's own search; ivfpq's L2 distances between unit vectors become cosines."""
        scores, rows = self.index_.search(unit_queries, k)
        return (cosine_of(scores), rows) if self.kind_ == "ivfpq" else (scores, rows)

    def _reranked_search(self, unit_queries: np.ndarray, k: int, vectors_of_rows) -> tuple[np.ndarray, np.ndarray]:
        """(exact cosines, rows) of the k best of the ivfpq index's ``rerank`` best candidates (at least 2 k)."""
        _, candidates = self.index_.search(unit_queries, min(self.n_, max(self.rerank, 2 * k)))
        return reranked(unit_queries, candidates, vectors_of_rows, k)

    def _measured_recall(self, vectors: np.ndarray) -> tuple[float, float | None]:
        """Mean recall@20 of this index against exact search, own key excluded, on up to 1000 stored vectors; and
        for ivfpq the same re-ranked from ``vectors`` (those fitted)."""
        k = min(RECALL_K, self.n_ - 1)
        if k < 1:
            return 1.0, (1.0 if self.kind_ == "ivfpq" else None)
        rows = np.sort(np.random.default_rng(self.seed).choice(self.n_, min(RECALL_QUERIES, self.n_), replace=False))
        with _omp_threads(self.threads):
            if self.kind_ == "hnsw":
                stored = _stored_vectors(self.index_, self.n_, self.dim_)  # a view of FAISS's copy: no second one
                queries = np.ascontiguousarray(stored[rows])
                _, exact = faiss.knn(queries, stored, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
                return _recall(rows, exact, self.index_.search(queries, k + 1)[1], k), None
            queries = unit_rows(vectors[rows])  # ivfpq keeps only codes: the originals are read a block at a time
            _, exact = exact_top_k(queries, vectors, k + 1)
            _, approximate = self.index_.search(queries, k + 1)
            again = np.vstack([self._reranked_search(queries[start:start + RERANK_BLOCK], k + 1,
                                                     lambda wanted: vectors[wanted])[1]
                               for start in range(0, len(rows), RERANK_BLOCK)])
        return _recall(rows, exact, approximate, k), _recall(rows, exact, again, k)


def _recall(rows: np.ndarray, exact: np.ndarray, approximate: np.ndarray, k: int) -> float:
    """Mean share of each query row's k exact neighbours (itself left out) among its k approximate ones."""
    hits = 0
    for row, truth, got in zip(rows, exact, approximate, strict=True):
        truth = truth[(truth != row) & (truth >= 0)][:k]
        got = got[(got != row) & (got >= 0)][:k]
        hits += len(np.intersect1d(truth, got))
    return hits / (k * len(rows))


def _stored_vectors(index: faiss.Index, n: int, dim: int) -> np.ndarray:
    """The normalised vectors inside a flat or HNSW-flat index, as a numpy view of FAISS's memory."""
    flat = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
    return faiss.rev_swig_ptr(flat.get_xb(), n * dim).reshape(n, dim)


@contextmanager
def _omp_threads(count: int | None):
    """Run the block on ``count`` OpenMP threads (None: as they are), restoring the count after."""
    if count is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
