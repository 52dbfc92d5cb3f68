"""The compressed IVF-PQ neighbour index (mlcore/neighbours/index.py kind "ivfpq", sized by
mlcore/neighbours/ivfpq.py)."""

import numpy as np
import pytest

from mlcore.features.store import FeatureStore
from mlcore.neighbours.index import NeighbourIndex
from mlcore.neighbours.ivfpq import TRAIN_MAX_ROWS, IvfpqShape, ivfpq_shape
from tests.mlcore.neighbours.test_index import clustered as clustered_vectors

DIM = 64
N = 4000


def clustered(n: int, *, seed: int = 0, clusters: int = 10) -> np.ndarray:
    """test_index's clustered vectors, at this file's dimension (IVF-PQ needs dim/8 sub-quantisers)."""
    return clustered_vectors(n, seed=seed, clusters=clusters, dim=DIM)


VECTORS = clustered(N)
KEYS = np.arange(N, dtype=np.int64) * 3 + 1000  # keys unlike row numbers, so a mix-up shows
UNIT = VECTORS / np.linalg.norm(VECTORS, axis=1, keepdims=True)
COSINES = UNIT @ UNIT.T


def originals_of(keys: np.ndarray) -> np.ndarray:
    """The stored vectors of ``keys``: what a FeatureStore's get gives the re-ranking."""
    return VECTORS[(np.asarray(keys) - 1000) // 3]


def actual_recall_at_20(fitted: NeighbourIndex, **search) -> float:
    """Mean share of each stored vector's 20 true nearest others that ``similar`` finds, on every 10th vector."""
    shares = []
    for row in range(0, N, 10):
        order = np.argsort(-COSINES[row], kind="stable")
        truth = KEYS[order[order != row][:20]]
        found = [key for key, _ in fitted.similar(VECTORS[row], 20, exclude_key=int(KEYS[row]), **search)]
        shares.append(len(np.intersect1d(truth, found)) / 20)
    return float(np.mean(shares))


@pytest.fixture(scope="module")
def ivfpq() -> NeighbourIndex:
    return NeighbourIndex(kind="ivfpq").fit(VECTORS, KEYS)


def test_ivfpq_finds_nine_in_ten_true_neighbours_once_reranked_and_reports_both_recalls(ivfpq):
    reranked = actual_recall_at_20(ivfpq, rerank_from=originals_of)
    alone = actual_recall_at_20(ivfpq)

    assert reranked >= 0.9  # 0.97 when written: the best 100 by 6-bit codes, re-scored exactly
    assert 0.3 <= alone < reranked  # about 0.55: the codes alone are coarse at this size
    assert ivfpq.reranked_recall_at_20_ == pytest.approx(reranked, abs=0.03)
    assert ivfpq.recall_at_20_ == pytest.approx(alone, abs=0.05)
    assert (ivfpq.kind_, ivfpq.n_, ivfpq.dim_) == ("ivfpq", N, DIM)


def test_scanning_a_single_list_loses_neighbours_the_default_nprobe_finds(ivfpq):
    narrow = NeighbourIndex(kind="ivfpq", nprobe=1).fit(VECTORS, KEYS)

    assert narrow.reranked_recall_at_20_ < 0.6 < 0.9 < ivfpq.reranked_recall_at_20_


def test_its_scores_are_cosines_estimated_from_codes_and_exact_once_reranked(ivfpq):
    queries = clustered(5, seed=1) * 7.5  # scale must not matter: cosine
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)

    scores, keys = ivfpq.search(queries, 10)
    exact_scores, exact_keys = ivfpq.search(queries, 10, rerank_from=originals_of)

    true_cosines = np.einsum("qd,qkd->qk", unit_queries, UNIT[(keys - 1000) // 3])
    assert np.abs(scores - true_cosines).mean() < 0.06  # 0.04 when written: coarse 6-bit codes at this size
    np.testing.assert_allclose(exact_scores, np.einsum("qd,qkd->qk", unit_queries, UNIT[(exact_keys - 1000) // 3]),
                               atol=1e-5)
    assert (np.diff(exact_scores, axis=1) <= 0).all() and (np.diff(scores, axis=1) <= 1e-6).all()
    assert scores.dtype == exact_scores.dtype == np.float32 and keys.dtype == exact_keys.dtype == np.int64


@pytest.mark.parametrize("n, kind", [(50, "exact"), (51, "hnsw"), (199, "hnsw"), (200, "ivfpq")])
def test_auto_is_exact_up_to_exact_max_then_hnsw_then_ivfpq_from_ivfpq_min(n, kind):
    fitted = NeighbourIndex(exact_max=50, ivfpq_min=200).fit(VECTORS[:n], KEYS[:n])

    assert fitted.kind_ == kind


def test_auto_stays_exact_when_ivfpq_min_is_below_exact_max():
    assert NeighbourIndex(exact_max=300, ivfpq_min=100).fit(VECTORS[:300], KEYS[:300]).kind_ == "exact"


def test_save_and_load_give_identical_answers_and_keep_every_parameter(tmp_path):
    fitted = NeighbourIndex(kind="ivfpq", nprobe=8, rerank=50, ivfpq_min=500, seed=3).fit(VECTORS, KEYS)
    path = tmp_path / "neighbours.faiss"

    fitted.save(path)
    loaded = NeighbourIndex.load(path)

    queries = clustered(20, seed=2)
    for search in ({}, {"rerank_from": originals_of}):
        for got, want in zip(loaded.search(queries, 7, **search), fitted.search(queries, 7, **search), strict=True):
            np.testing.assert_array_equal(got, want)
    assert (loaded.kind_, loaded.n_, loaded.dim_) == ("ivfpq", N, DIM)
    assert (loaded.nprobe, loaded.rerank, loaded.ivfpq_min, loaded.seed) == (8, 50, 500, 3)
    assert (loaded.recall_at_20_, loaded.reranked_recall_at_20_) == (fitted.recall_at_20_,
                                                                     fitted.reranked_recall_at_20_)
    # The lists scanned are set on the loaded FAISS index, which keeps no table of precomputed distances.
    assert loaded.index_.nprobe == 8 and loaded.index_.precomputed_table.size() == 0


def test_it_indexes_a_float16_memory_map_and_reranks_from_the_feature_store(tmp_path):
    store = FeatureStore.create(tmp_path / "features", dim=DIM)
    store.append(KEYS[:1000], VECTORS[:1000])
    assert store.vectors().dtype == np.float16 and isinstance(store.vectors(), np.memmap)

    fitted = NeighbourIndex(kind="ivfpq").fit(store.vectors(), store.keys())

    found = fitted.similar(store.get([KEYS[7]])[0], 3, rerank_from=store.get)
    assert found[0] == (KEYS[7], pytest.approx(1.0, abs=1e-5))
    assert fitted.reranked_recall_at_20_ >= 0.9


@pytest.mark.parametrize("n, dim, nlist, pq_m, bits, train_rows", [
    (8_700_000, 512, 6721, 64, 8, TRAIN_MAX_ROWS),  # the catalogue: sample capped, nlist by the sample
    (1_000_000, 512, 4000, 64, 8, 200_000),
    (1_000_000, 2048, 4000, 256, 8, 200_000),
    (100_000, 100, 1265, 10, 8, 63_250),  # 8 does not divide 100: the divisor nearest 12.5
    (4000, 64, 102, 8, 6, 4000),  # too few vectors for 256 centroids per sub-quantizer: 64
])
def test_its_shape_follows_the_catalogue_with_a_bounded_training_sample(n, dim, nlist, pq_m, bits, train_rows):
    assert ivfpq_shape(n, dim) == IvfpqShape(nlist=nlist, pq_m=pq_m, pq_bits=bits, train_rows=train_rows)


@pytest.mark.parametrize("params, message", [
    ({"nprobe": 0}, r"nprobe must be an integer >= 1, got 0"),
    ({"nprobe": 2.5}, r"nprobe must be an integer >= 1, got 2.5"),
    ({"ivfpq_min": 0}, r"ivfpq_min must be an integer >= 1, got 0"),
    ({"nlist": 0}, r"nlist must be an integer >= 1 or None, got 0"),
    ({"pq_m": -8}, r"pq_m must be an integer >= 1 or None, got -8"),
    ({"rerank": True}, r"rerank must be an integer >= 1, got True"),
    ({"exact_max": -1}, r"exact_max must be an integer >= 0, got -1"),
    ({"pq_m": 5}, r"pq_m=5 must divide the vector dimension 64"),
    ({"nlist": N + 1}, rf"nlist={N + 1} lists need at least as many training vectors; {N} are used"),
])
def test_bad_parameters_are_refused_naming_the_parameter(params, message):
    with pytest.raises(ValueError, match=message):
        NeighbourIndex(kind="ivfpq", **params).fit(VECTORS, KEYS)


def test_too_few_vectors_to_train_on_are_refused():
    with pytest.raises(ValueError, match=r"kind='ivfpq' needs at least 78 vectors to train on, got 77"):
        NeighbourIndex(kind="ivfpq").fit(VECTORS[:77], KEYS[:77])


def test_reranking_refuses_originals_of_the_wrong_shape(ivfpq):
    with pytest.raises(ValueError, match=r"must have shape \(\d+, 64\), got \(\d+, 63\)"):
        ivfpq.search(VECTORS[:1], 5, rerank_from=lambda keys: originals_of(keys)[:, :63])
