"""Cosine nearest neighbours (mlcore/neighbours/index.py): exact equals brute force, HNSW reports its recall,
save/load."""

import numpy as np
import pytest

from mlcore.features.store import FeatureStore
from mlcore.neighbours.index import NeighbourIndex

DIM = 32


def clustered(n: int, *, seed: int = 0, clusters: int = 10, dim: int = DIM) -> np.ndarray:
    """Non-negative vectors around a few centres, like ReLU features of a handful of morphologies."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)) * 2
    points = centres[rng.integers(clusters, size=n)] + rng.standard_normal((n, dim))
    return np.maximum(points, 0).astype(np.float32)


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cosine similarities with plain numpy: (scores, rows)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    order = np.argsort(-cosines, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cosines, order, axis=1), order


VECTORS = clustered(2000)
KEYS = np.arange(2000, dtype=np.int64) * 3 + 1000  # keys unlike row numbers, so a mix-up shows


@pytest.fixture(scope="module")
def exact() -> NeighbourIndex:
    return NeighbourIndex(kind="exact").fit(VECTORS, KEYS)


@pytest.fixture(scope="module")
def hnsw() -> NeighbourIndex:
    return NeighbourIndex(kind="hnsw", hnsw_m=16, ef_construction=40, ef_search=64).fit(VECTORS, KEYS)


def test_exact_search_equals_numpy_brute_force_cosine_top_k(exact):
    queries = clustered(5, seed=1) * 7.5  # scale must not matter: cosine

    scores, keys = exact.search(queries, 10)

    want_scores, want_rows = brute_force(VECTORS, queries, 10)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    np.testing.assert_array_equal(keys, KEYS[want_rows])
    assert scores.dtype == np.float32 and keys.dtype == np.int64
    assert (exact.kind_, exact.n_, exact.dim_, exact.recall_at_20_) == ("exact", 2000, DIM, 1.0)
    assert exact.build_seconds_ >= 0


@pytest.mark.parametrize("n, kind", [(50, "exact"), (51, "hnsw")])
def test_auto_is_exact_up_to_exact_max_and_hnsw_above(n, kind):
    fitted = NeighbourIndex(exact_max=50).fit(VECTORS[:n], KEYS[:n])

    assert fitted.kind_ == kind


def test_hnsw_reports_a_recall_that_matches_what_it_finds_and_is_high_on_clustered_data(hnsw):
    poor = NeighbourIndex(kind="hnsw", hnsw_m=2, ef_construction=2, ef_search=1).fit(VECTORS, KEYS)

    for fitted, low in ((hnsw, 0.95), (poor, 0.0)):
        _, found = fitted.search(VECTORS, 21)
        _, truth = brute_force(VECTORS, VECTORS, 21)
        actual = np.mean([len(np.intersect1d(f[f != key][:20], KEYS[t][KEYS[t] != key][:20])) / 20
                          for key, f, t in zip(KEYS, found, truth, strict=True)])
        assert fitted.recall_at_20_ == pytest.approx(actual, abs=0.03)
        assert fitted.recall_at_20_ >= low
    assert poor.recall_at_20_ < 0.9 < hnsw.recall_at_20_


def test_similar_leaves_out_the_galaxy_itself(hnsw):
    me = int(KEYS[123])

    found = hnsw.similar(VECTORS[123], 5, exclude_key=me)
    with_me = hnsw.similar(VECTORS[123], 5)

    assert len(found) == 5 and me not in [key for key, _ in found]
    assert with_me[0] == (me, pytest.approx(1.0, abs=1e-5))
    assert [key for key, _ in found[:4]] == [key for key, _ in with_me[1:]]
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True) and all(isinstance(k, int) for k, _ in found)


def test_k_larger_than_the_index_pads_with_minus_one_and_minus_infinity():
    small = NeighbourIndex().fit(VECTORS[:3], KEYS[:3])

    scores, keys = small.search(VECTORS[:2], 5)

    assert keys.shape == scores.shape == (2, 5)
    np.testing.assert_array_equal(keys[:, 3:], -1)
    assert np.isneginf(scores[:, 3:]).all() and np.isfinite(scores[:, :3]).all()
    assert set(keys[0, :3]) == set(KEYS[:3])
    assert [key for key, _ in small.similar(VECTORS[0], 5, exclude_key=int(KEYS[0]))] == list(keys[0, 1:3])


@pytest.mark.parametrize("which", ["exact", "hnsw"])
def test_save_and_load_give_identical_answers(which, request, tmp_path):
    fitted = request.getfixturevalue(which)
    path = tmp_path / "neighbours.faiss"

    fitted.save(path)
    loaded = NeighbourIndex.load(path)

    queries = clustered(20, seed=2)
    for got, want in zip(loaded.search(queries, 7), fitted.search(queries, 7), strict=True):
        np.testing.assert_array_equal(got, want)
    assert (loaded.kind_, loaded.n_, loaded.dim_, loaded.ef_search) == (fitted.kind_, 2000, DIM, fitted.ef_search)
    assert loaded.recall_at_20_ == fitted.recall_at_20_
    assert [p.name for p in tmp_path.iterdir()] == ["neighbours.faiss"]  # no temporary file left


def test_save_replaces_an_older_file(exact, tmp_path):
    path = tmp_path / "neighbours.faiss"
    NeighbourIndex().fit(VECTORS[:10], KEYS[:10]).save(path)

    exact.save(path)

    assert NeighbourIndex.load(path).n_ == 2000


@pytest.mark.parametrize("damage", ["garbage", "truncated", "keys cut"])
def test_load_refuses_a_damaged_file_naming_it(exact, tmp_path, damage):
    path = tmp_path / "neighbours.faiss"
    exact.save(path)
    data = path.read_bytes()
    keys_start = 16 + int.from_bytes(data[8:16], "little")  # magic, header length, header
    path.write_bytes({"garbage": b"not an index at all", "truncated": data[:-100],
                      "keys cut": data[:keys_start + 40]}[damage])

    with pytest.raises(ValueError, match="neighbours.faiss is not a readable saved NeighbourIndex"):
        NeighbourIndex.load(path)


def test_load_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.faiss"):
        NeighbourIndex.load(tmp_path / "absent.faiss")


def test_an_unfitted_index_refuses_to_search_or_save(tmp_path):
    unfitted = NeighbourIndex()

    for use in (lambda: unfitted.search(VECTORS[:1], 3), lambda: unfitted.similar(VECTORS[0], 3),
                lambda: unfitted.save(tmp_path / "x")):
        with pytest.raises(ValueError, match="not fitted yet"):
            use()


@pytest.mark.parametrize("vectors, keys, message", [
    (np.empty((0, DIM)), np.empty(0, np.int64), r"non-empty 2-D array \(n, dim\), got shape \(0, 32\)"),
    (VECTORS[0], KEYS[:1], r"got shape \(32,\)"),
    (VECTORS[:5], KEYS[:4], r"keys must have shape \(5,\) to match vectors \(5, 32\), got \(4,\)"),
    (VECTORS[:3], np.array([7, 8, 7]), r"unique; repeated: \[7\]"),
    (VECTORS[:2], np.array([1.0, 2.0]), "keys must be integers"),
    (np.full((2, DIM), np.nan), KEYS[:2], "NaN or infinite"),
])
def test_fit_refuses_bad_input_naming_the_shapes(vectors, keys, message):
    with pytest.raises(ValueError, match=message):
        NeighbourIndex().fit(vectors, keys)


def test_fit_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        NeighbourIndex(kind="annoy").fit(VECTORS[:5], KEYS[:5])


def test_search_refuses_a_wrong_dimension_or_k(exact):
    with pytest.raises(ValueError, match=r"shape \(q, 32\), got \(1, 31\)"):
        exact.search(VECTORS[:1, :31], 3)
    with pytest.raises(ValueError, match=r"shape \(q, 32\), got \(32,\)"):
        exact.search(VECTORS[0], 3)
    with pytest.raises(ValueError, match=r"one-dimensional \(dim,\), got shape \(1, 32\)"):
        exact.similar(VECTORS[:1], 3)
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            exact.similar(VECTORS[0], k, exclude_key=1000)


def test_it_indexes_a_float16_memory_map_straight_from_the_feature_store(tmp_path):
    store = FeatureStore.create(tmp_path / "features", dim=DIM)
    store.append(KEYS[:300], VECTORS[:300])

    fitted = NeighbourIndex().fit(store.vectors(), store.keys())

    assert fitted.similar(store.get([KEYS[7]])[0], 1)[0][0] == KEYS[7]
