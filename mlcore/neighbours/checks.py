"""Checks of what NeighbourIndex (mlcore/neighbours/index.py) is given: parameters, vectors and keys, k.

Each raises ValueError naming the parameter or argument at fault and what it got.
"""

from __future__ import annotations

import numpy as np

KINDS = ("auto", "exact", "hnsw", "ivfpq")
LOWEST = {"exact_max": 0, "ivfpq_min": 1, "hnsw_m": 2, "ef_construction": 1, "ef_search": 1, "nlist": 1, "pq_m": 1,
          "nprobe": 1, "rerank": 1, "seed": 0, "threads": 1}
MAY_BE_NONE = ("nlist", "pq_m", "threads")  # None: sized from the data, or FAISS's own thread count


def check_params(params: dict) -> None:
    """Raise ValueError unless ``params`` (NeighbourIndex's constructor arguments) name a kind and in-range ints."""
    if params["kind"] not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {params['kind']!r}")
    for name, low in LOWEST.items():
        value = params[name]
        if value is None and name in MAY_BE_NONE:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}" + (" or None" if name in MAY_BE_NONE else "")
                             + f", got {value!r}")


def checked_data(vectors, keys) -> tuple[np.ndarray, np.ndarray]:
    """(vectors as an array (a memmap stays one), keys as int64) after checking their shapes and types."""
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


def checked_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)
