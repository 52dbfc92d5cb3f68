"""Nearest neighbours by cosine similarity over feature vectors, with FAISS.

Vectors are L2-normalised on the way in, so cosine similarity is the inner product: exact search is
``IndexFlatIP`` and approximate search ``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``. Keys are int64 galaxy ids,
kept beside the index (FAISS itself numbers rows 0..n-1).

Threads: a single query (or a handful) runs on one OpenMP thread. FAISS parallelises over queries, so more threads
would not speed one query up, and on a small shared machine a parallel region waits for its slowest thread, which
turns a 0.3 ms query into milliseconds whenever the web server and worker are busy. Building and large batches of
queries use ``threads`` (None: FAISS's default, one per core). Thread counts are set per call and restored after,
and in libgomp only for the calling thread.
"""

from __future__ import annotations

import json
import os
import struct
import time
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

KINDS = ("auto", "exact", "hnsw")
RECALL_QUERIES = 1000
RECALL_K = 20
FEW_QUERIES = 16  # up to this many queries run on one thread (see the module docstring)
ADD_CHUNK = 65536  # rows normalised and added at a time, so fit never holds a second full-size float32 copy
MAGIC = b"MLCNBR01"  # file = MAGIC, header length (uint64 LE), JSON header, keys (int64 LE), faiss index


class NeighbourIndex:
    """Cosine-similarity nearest neighbours of feature vectors keyed by galaxy id.

    Args:
        kind: "exact" (``IndexFlatIP``: every vector compared, recall 1), "hnsw" (``IndexHNSWFlat``: a graph walk,
            about 1 ms at 300k) or "auto" (exact up to ``exact_max`` vectors, hnsw above). An IVF index was not
            needed: HNSW met the target (bench/neighbours.py) with a simpler set of knobs.
        exact_max: the largest index "auto" builds exact. Brute force costs about 0.12 ms per 1,000 512-d vectors
            on one thread (about 1.2 ms at 10k, 4 ms at 30k), while HNSW builds 10k vectors in a few seconds.
        hnsw_m: graph neighbours per vector (memory: about 8 * hnsw_m bytes per vector beside the vectors).
        ef_construction: candidate list while building. 128 rather than 64 costs 1.5-2x the build time but
            gives a better graph: at 300k, recall@20 0.997 instead of 0.989 at ef_search 96, and fewer queries
            whose walk ends in the wrong region (recall 0) -- the rare galaxies an expert most wants neighbours of.
        ef_search: candidate list while searching (at least k is used); raises recall and latency together. At 300k
            with the defaults: 64 -> recall 0.992, 96 -> 0.997, 128 -> 0.999, p50 0.6 / 0.8 / 1.0 ms.
        seed: picks the vectors recall is measured on and the HNSW level draws (a multi-threaded build is still not
            bit-for-bit reproducible).
        threads: OpenMP threads for building and for batches of more than 16 queries; None leaves FAISS's default.

    Attributes (after ``fit``):
        kind_: "exact" or "hnsw".
        n_, dim_: how many vectors, of what dimension.
        keys_: int64 (n_,) key of each row.
        build_seconds_: time to normalise and add the vectors.
        recall_at_20_: for hnsw, mean recall@20 against exact search with up to 1000 stored vectors as queries
            (each query's own key left out, as ``similar`` leaves out the galaxy itself); 1.0 for exact.
    """

    def __init__(self, *, kind: str = "auto", exact_max: int = 10_000, hnsw_m: int = 32, ef_construction: int = 128,
                 ef_search: int = 96, seed: int = 0, threads: int | None = None) -> None:
        self.kind = kind
        self.exact_max = exact_max
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
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
            ValueError: on an unknown kind, empty or non-2-D vectors, keys not (n,) unique integers, or NaN/inf.
        """
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        vectors, keys = _checked_data(vectors, keys)
        n, dim = vectors.shape
        kind = self.kind if self.kind != "auto" else ("exact" if n <= self.exact_max else "hnsw")
        if kind == "exact":
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.rng = faiss.RandomGenerator(self.seed)
        started = time.perf_counter()
        with _omp_threads(self.threads):
            for start in range(0, n, ADD_CHUNK):
                index.add(_unit_rows(vectors[start:start + ADD_CHUNK]))
        self.build_seconds_ = time.perf_counter() - started
        self.index_ = index
        self.kind_, self.n_, self.dim_, self.keys_ = kind, n, dim, keys
        self._set_search_depth()
        self.recall_at_20_ = 1.0 if kind == "exact" else self._measured_recall()
        return self

    def search(self, vectors, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar stored vectors to each row of ``vectors`` (q, dim).

        Returns:
            (scores float32 (q, k), keys int64 (q, k)): cosine similarities, best first. When fewer than k vectors
            are stored (or an approximate search finds fewer), the rest of the row is key -1 with score -inf.

        Raises:
            ValueError: when unfitted, k < 1, vectors is not (q, dim_) or holds NaN/inf.
        """
        self._check_fitted()
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim_:
            raise ValueError(f"vectors must have shape (q, {self.dim_}), got {vectors.shape}")
        k = _checked_k(k)
        found = min(k, self.n_)  # FAISS would pad too, but sizing its heaps to a huge k costs time
        with _omp_threads(1 if len(vectors) <= FEW_QUERIES else self.threads):
            scores, rows = self.index_.search(_unit_rows(vectors), found)
        missing = rows < 0
        keys = np.full((len(vectors), k), -1, np.int64)
        keys[:, :found] = np.where(missing, -1, self.keys_[np.where(missing, 0, rows)])
        padded = np.full((len(vectors), k), -np.inf, np.float32)
        padded[:, :found] = np.where(missing, -np.inf, scores)
        return padded, keys

    def similar(self, vector, k: int, *, exclude_key: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` (key, cosine similarity) most like one ``vector`` (dim,), best first, without ``exclude_key``.

        Fewer than k pairs come back when the index holds fewer vectors. This is the one path for "galaxies like
        this one": pass the galaxy's own vector and its key as ``exclude_key``.

        Raises:
            ValueError: when unfitted, k < 1, or vector is not (dim_,).
        """
        vector = np.asarray(vector)
        if vector.ndim != 1:
            raise ValueError(f"vector must be one-dimensional (dim,), got shape {vector.shape}")
        k = _checked_k(k)
        scores, keys = self.search(vector[None, :], k + 1 if exclude_key is not None else k)
        pairs = [(int(key), float(score)) for key, score in zip(keys[0], scores[0], strict=True)
                 if key != -1 and key != exclude_key]
        return pairs[:k]

    def save(self, path: str | os.PathLike) -> None:
        """Write the index, keys and parameters to the single file ``path``, atomically (temporary name, replace).

        Raises:
            ValueError: when unfitted.
        """
        self._check_fitted()
        path = Path(path)
        header = json.dumps({"params": self._params(), "kind": self.kind_, "n": self.n_, "dim": self.dim_,
                             "build_seconds": self.build_seconds_, "recall_at_20": self.recall_at_20_}).encode()
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(temporary, "wb") as out:
                out.write(MAGIC + struct.pack("<Q", len(header)) + header)
                out.write(self.keys_.astype("<i8").tobytes())
                faiss.write_index(self.index_, faiss.PyCallbackIOWriter(out.write))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NeighbourIndex:
        """The index ``save`` wrote to ``path``.

        Raises:
            FileNotFoundError: when ``path`` does not exist.
            ValueError: when ``path`` is not a saved index, or is truncated or damaged.
        """
        path = Path(path)
        with open(path, "rb") as source:
            try:
                if source.read(len(MAGIC)) != MAGIC:
                    raise ValueError("it does not start like one")
                (length,) = struct.unpack("<Q", source.read(8))
                header = json.loads(source.read(length))
                n, dim = int(header["n"]), int(header["dim"])
                keys = np.frombuffer(source.read(8 * n), dtype="<i8").astype(np.int64)
                if len(keys) != n:
                    raise ValueError(f"it holds {len(keys)} of its {n} keys")
                index = faiss.read_index(faiss.PyCallbackIOReader(source.read))
                if index.ntotal != n or index.d != dim or source.read(1):
                    raise ValueError(f"its FAISS index ({index.ntotal} x {index.d}) does not match {n} x {dim}")
                fitted = cls(**header["params"])
                fitted.build_seconds_, fitted.recall_at_20_ = header["build_seconds"], header["recall_at_20"]
                kind = header["kind"]
            except (ValueError, KeyError, TypeError, struct.error, RuntimeError) as error:
                raise ValueError(f"{path} is not a readable saved NeighbourIndex: {error}") from None
        fitted.index_, fitted.kind_, fitted.n_, fitted.dim_, fitted.keys_ = index, kind, n, dim, keys
        fitted._set_search_depth()
        return fitted

    def _params(self) -> dict:
        return {"kind": self.kind, "exact_max": self.exact_max, "hnsw_m": self.hnsw_m,
                "ef_construction": self.ef_construction, "ef_search": self.ef_search, "seed": self.seed,
                "threads": self.threads}

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise ValueError("this NeighbourIndex is not fitted yet: call fit(vectors, keys) first")

    def _set_search_depth(self) -> None:
        if self.kind_ == "hnsw":
            self.index_.hnsw.efSearch = self.ef_search

    def _measured_recall(self) -> float:
        """Mean recall@20 of this index against exact search, own key excluded, on up to 1000 stored vectors."""
        k = min(RECALL_K, self.n_ - 1)
        if k < 1:
            return 1.0
        rows = np.random.default_rng(self.seed).choice(self.n_, min(RECALL_QUERIES, self.n_), replace=False)
        stored = _stored_vectors(self.index_, self.n_, self.dim_)  # a view of FAISS's copy: no second copy here
        queries = np.ascontiguousarray(stored[rows])
        with _omp_threads(self.threads):
            _, exact = faiss.knn(queries, stored, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
            _, approximate = self.index_.search(queries, k + 1)
        hits = 0
        for row, truth, got in zip(rows, exact, approximate, strict=True):
            truth = truth[truth != row][:k]
            got = got[(got != row) & (got >= 0)][:k]
            hits += len(np.intersect1d(truth, got))
        return hits / (k * len(rows))


def _checked_data(vectors, keys) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.asarray(vectors)  # a memmap stays a view of its file: rows are read chunk by chunk in fit
    keys = np.asarray(keys)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise ValueError(f"vectors must be a non-empty 2-D array (n, dim), got shape {vectors.shape}")
    if vectors.dtype.kind not in "fiu":
        raise ValueError(f"vectors must be numbers, got dtype {vectors.dtype}")
    if keys.shape != (vectors.shape[0],):
        raise ValueError(f"keys must have shape ({vectors.shape[0]},) to match vectors {vectors.shape}, "
                         f"got {keys.shape}")
    if keys.dtype.kind not in "iu":
        raise ValueError(f"keys must be integers, got dtype {keys.dtype}")
    keys = keys.astype(np.int64)
    ordered = np.sort(keys)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if len(repeated):
        raise ValueError(f"keys must be unique; repeated: {repeated[:10].tolist()}")
    return vectors, keys


def _checked_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
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
