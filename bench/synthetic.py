"""Synthetic feature vectors for the benchmarks: clustered like real CNN features, reproducible from a seed.

Real galaxy features come in a few hundred dimensions with most variance in a few dozen directions and classes that
overlap; plain isotropic blobs would make every index and clustering look perfect. So each cluster centre lives in a
low-dimensional subspace, points scatter around it with a heavy per-cluster spread, and everything is non-negative
(ReLU features) before the caller normalises it.
"""

import numpy as np


def clustered_vectors(n: int, dim: int = 512, *, n_clusters: int = 50, intrinsic_dim: int = 32,
                      spread: float = 0.6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors of ``dim`` float32 values in ``n_clusters`` overlapping clusters.

    Returns:
        (vectors (n, dim) float32, true cluster of each vector (n,) int64).
    """
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((intrinsic_dim, dim)).astype(np.float32) / np.sqrt(intrinsic_dim)
    centres = rng.standard_normal((n_clusters, intrinsic_dim)).astype(np.float32) * 2.0
    sizes = rng.dirichlet(np.full(n_clusters, 2.0))  # unequal clusters, as morphology classes are
    truth = rng.choice(n_clusters, size=n, p=sizes).astype(np.int64)
    scale = rng.uniform(0.5, 1.5, size=n_clusters).astype(np.float32) * spread * 2.0
    chunks = []
    for start in range(0, n, 50_000):  # 50k at a time keeps the temporary arrays small at 1M points
        part = truth[start:start + 50_000]
        latent = centres[part] + rng.standard_normal((len(part), intrinsic_dim)).astype(np.float32) * scale[part, None]
        noise = rng.standard_normal((len(part), dim)).astype(np.float32) * 0.05
        chunks.append(np.maximum(latent @ basis + noise, 0.0).astype(np.float32, copy=False))
    return np.concatenate(chunks), truth
