"""Feature vectors on disk (mlcore/features/store.py): round trips, refusals that write nothing, crash safety, memory
maps."""

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mlcore.features.store import FeatureStore

DIM = 8


def rows(n: int, *, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def sizes(store: FeatureStore) -> dict[str, int]:
    return {name: (store.path / name).stat().st_size for name in ("vectors.bin", "keys.bin", "meta.json")}


@pytest.fixture
def store(tmp_path) -> FeatureStore:
    """Ten rows under keys 100, 110, ..., 190."""
    made = FeatureStore.create(tmp_path / "features", dim=DIM)
    made.append(np.arange(100, 200, 10), rows(10))
    return made


@pytest.mark.parametrize("dtype, tolerance", [("float16", 2e-3), ("float32", 0.0)])
def test_vectors_come_back_as_float32_within_the_precision_of_the_store(tmp_path, dtype, tolerance):
    vectors = rows(50)
    made = FeatureStore.create(tmp_path / "s", dim=DIM, dtype=dtype)
    made.append(np.arange(50), vectors)

    reopened = FeatureStore.open(tmp_path / "s")
    got = reopened.get(np.arange(50))

    assert (reopened.dim, reopened.dtype, len(reopened)) == (DIM, dtype, 50)
    assert got.dtype == np.float32 and got.shape == (50, DIM)
    np.testing.assert_allclose(got, vectors, rtol=tolerance, atol=tolerance)
    assert reopened.vectors().dtype == np.dtype(dtype)
    assert (reopened.path / "vectors.bin").stat().st_size == 50 * DIM * np.dtype(dtype).itemsize


def test_get_returns_the_rows_in_the_order_asked(store):
    got = store.get([170, 100, 190, 170])

    assert got.shape == (4, DIM)
    np.testing.assert_array_equal(got[0], got[3])
    np.testing.assert_allclose(got, rows(10)[[7, 0, 9, 7]], atol=2e-3)


def test_get_names_the_missing_keys_in_a_key_error(store):
    with pytest.raises(KeyError, match=r"2 key\(s\) not in the feature store .*: 5, 999"):
        store.get([100, 5, 999])


def test_has_tells_stored_keys_from_others(store):
    np.testing.assert_array_equal(store.has([100, 105, 190, -1, 10**12]), [True, False, True, False, False])


def test_keys_come_back_read_only_in_insertion_order(tmp_path):
    made = FeatureStore.create(tmp_path / "s", dim=DIM)
    made.append([30, 10], rows(2))
    made.append([20], rows(1))

    keys = made.keys()

    np.testing.assert_array_equal(keys, [30, 10, 20])
    assert keys.dtype == np.int64
    with pytest.raises(ValueError, match="read-only"):
        keys[0] = 1


def test_it_refuses_keys_already_stored_and_writes_nothing(store):
    before = sizes(store)

    with pytest.raises(ValueError, match=r"keys already in the feature store .*\[110\]"):
        store.append([500, 110], rows(2))

    assert sizes(store) == before and len(store) == 10
    assert not store.has([500])[0]
    assert len(FeatureStore.open(store.path)) == 10


def test_it_refuses_keys_repeated_within_one_append_and_writes_nothing(store):
    before = sizes(store)

    with pytest.raises(ValueError, match=r"repeated within one append: \[7\]"):
        store.append([7, 8, 7], rows(3))

    assert sizes(store) == before and len(FeatureStore.open(store.path)) == 10


@pytest.mark.parametrize("keys, vectors, message", [
    ([1, 2], rows(2, dim=DIM + 1), r"shape \(n, 8\), got \(2, 9\)"),
    ([1, 2], rows(2)[0], r"shape \(n, 8\), got \(8,\)"),
    ([1, 2, 3], rows(2), "3 keys but 2 vectors"),
    ([[1, 2]], rows(2), r"one-dimensional, got shape \(1, 2\)"),
    ([1.5, 2.5], rows(2), "integers, got dtype float64"),
    ([1, 2], np.where(np.eye(2, DIM), np.nan, 0.0), "NaN or infinite"),
    ([1, 2], np.full((2, DIM), 1e6), "beyond the float16 range"),
])
def test_it_refuses_bad_input_and_writes_nothing(store, keys, vectors, message):
    before = sizes(store)

    with pytest.raises(ValueError, match=message):
        store.append(keys, vectors)

    assert sizes(store) == before and len(store) == 10


def test_a_float32_store_takes_values_too_large_for_float16(tmp_path):
    made = FeatureStore.create(tmp_path / "s", dim=DIM, dtype="float32")

    made.append([1], np.full((1, DIM), 1e6))

    assert made.get([1])[0, 0] == 1e6


def test_appends_after_reopening_add_to_the_earlier_rows(store):
    reopened = FeatureStore.open(store.path)
    reopened.append([1, 2], rows(2, seed=1))

    again = FeatureStore.open(store.path)

    assert len(again) == 12
    np.testing.assert_array_equal(again.keys()[-3:], [190, 1, 2])
    np.testing.assert_allclose(again.get([2, 100]), np.stack([rows(2, seed=1)[1], rows(10)[0]]), atol=2e-3)


def test_a_crash_before_the_commit_leaves_the_old_rows_and_a_later_append_works(store, monkeypatch):
    committed = sizes(store)

    def power_cut(self, count):
        raise OSError("simulated crash before meta.json is replaced")

    with monkeypatch.context() as patch:
        patch.setattr(FeatureStore, "_write_meta", power_cut)
        with pytest.raises(OSError, match="simulated crash"):
            store.append([1, 2, 3], rows(3, seed=2))
    assert sizes(store)["vectors.bin"] > committed["vectors.bin"]  # the new bytes did reach the file

    after = FeatureStore.open(store.path)
    assert len(after) == 10 and not after.has([1, 2, 3]).any()
    np.testing.assert_allclose(after.get([190]), rows(10)[[9]], atol=2e-3)

    after.append([1, 2, 3], rows(3, seed=3))

    final = FeatureStore.open(store.path)
    assert len(final) == 13
    np.testing.assert_allclose(final.get([3, 100]), np.stack([rows(3, seed=3)[2], rows(10)[0]]), atol=2e-3)
    assert sizes(final)["vectors.bin"] == 13 * DIM * 2  # the crashed bytes were cut off, not kept


def test_bytes_past_the_committed_end_are_ignored_on_open(store):
    with open(store.path / "vectors.bin", "ab") as out:
        out.write(b"\xff" * 1000)
    with open(store.path / "keys.bin", "ab") as out:
        out.write(b"\x01" * 12)

    reopened = FeatureStore.open(store.path)

    assert len(reopened) == 10 and reopened.vectors().shape == (10, DIM)
    np.testing.assert_array_equal(reopened.keys(), np.arange(100, 200, 10))


def test_a_second_handle_catches_up_before_it_appends(store):
    other = FeatureStore.open(store.path)
    store.append([1], rows(1))

    with pytest.raises(ValueError, match=r"already in the feature store .*\[1\]"):
        other.append([1], rows(1))
    other.append([2], rows(1))

    assert len(other) == 12 and len(FeatureStore.open(store.path)) == 12


def test_lookups_read_rows_through_a_read_only_memory_map(store):
    vectors = store.vectors()

    assert isinstance(vectors, np.memmap)
    assert Path(vectors.filename) == (store.path / "vectors.bin").resolve()
    assert vectors.shape == (10, DIM) and not vectors.flags.writeable


def test_get_allocates_only_the_rows_it_returns_not_the_whole_file(tmp_path):
    made = FeatureStore.create(tmp_path / "s", dim=256)
    made.append(np.arange(20_000), np.ones((20_000, 256), np.float32))  # a 10 MB vector file
    reopened = FeatureStore.open(tmp_path / "s")

    tracemalloc.start()
    try:
        got = reopened.get([5, 19_999, 0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert got.shape == (3, 256)
    assert peak < 200_000, f"get() of 3 rows allocated {peak} bytes"


def test_iter_batches_covers_every_row_in_insertion_order(store):
    batches = list(store.iter_batches(batch_size=4))

    assert [len(keys) for keys, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([keys for keys, _ in batches]), store.keys())
    np.testing.assert_array_equal(np.concatenate([v for _, v in batches]), store.get(store.keys()))
    assert batches[0][1].dtype == np.float32
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        next(store.iter_batches(batch_size=0))


def test_an_empty_store_answers_with_empty_arrays(tmp_path):
    empty = FeatureStore.create(tmp_path / "s", dim=DIM)
    empty.append([], np.empty((0, DIM)))

    assert len(empty) == 0 and empty.keys().shape == (0,)
    assert empty.vectors().shape == (0, DIM) and empty.get([]).shape == (0, DIM)
    assert list(empty.iter_batches()) == [] and not empty.has([1])[0]
    with pytest.raises(KeyError, match="1 key"):
        empty.get([1])
    assert len(FeatureStore.open(tmp_path / "s")) == 0


def test_create_refuses_a_directory_that_is_not_empty(store, tmp_path):
    with pytest.raises(FileExistsError, match="features: it exists"):
        FeatureStore.create(store.path, dim=DIM)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    with pytest.raises(FileExistsError, match="other"):
        FeatureStore.create(tmp_path / "other", dim=DIM)


@pytest.mark.parametrize("dim, dtype, message", [(0, "float16", "dim must be a positive"),
                                                 (8, "int8", "dtype must be one of")])
def test_create_refuses_a_bad_dim_or_dtype(tmp_path, dim, dtype, message):
    with pytest.raises(ValueError, match=message):
        FeatureStore.create(tmp_path / "s", dim=dim, dtype=dtype)


def test_open_names_a_path_that_is_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        FeatureStore.open(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="plain is not a feature store: it has no meta.json"):
        FeatureStore.open(tmp_path / "plain")
    (tmp_path / "plain" / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match="plain is not a feature store: meta.json is unreadable"):
        FeatureStore.open(tmp_path / "plain")


def test_open_refuses_a_store_whose_files_are_shorter_than_its_count(store):
    meta = json.loads((store.path / "meta.json").read_text())
    (store.path / "meta.json").write_text(json.dumps({**meta, "count": 11}))

    with pytest.raises(ValueError, match="damaged: vectors.bin holds 160 bytes"):
        FeatureStore.open(store.path)


def test_open_or_create_reuses_a_matching_store_and_refuses_another_shape(store, tmp_path):
    assert len(FeatureStore.open_or_create(store.path, dim=DIM)) == 10
    assert len(FeatureStore.open_or_create(tmp_path / "new", dim=4, dtype="float32")) == 0

    with pytest.raises(ValueError, match="holds dim=8 dtype=float16, not dim=16 dtype=float16"):
        FeatureStore.open_or_create(store.path, dim=16)
    with pytest.raises(ValueError, match="not dim=8 dtype=float32"):
        FeatureStore.open_or_create(store.path, dim=DIM, dtype="float32")
