"""Reading outside feature vectors chunk by chunk: .npy with an ids file, CSV and Parquet, each bad row named by its
row and column and left out of the chunks."""

import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcore.features.vector_files import VectorFileError, chunk_rows, open_vector_file


def read_all(vector_file):
    problems, rows, ids, vectors = [], [], [], []
    for chunk in vector_file.chunks(problems):
        rows += chunk.rows.tolist()
        ids += chunk.ids
        vectors.append(chunk.vectors)
    stacked = np.concatenate(vectors) if vectors else np.empty((0, vector_file.dim), np.float32)
    return rows, ids, stacked, [(p.row, p.column, p.message) for p in problems]


def test_an_npy_array_is_read_with_its_ids_file_row_by_row(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "f.npy", vectors)
    (tmp_path / "ids.txt").write_text("a\nb\nc\nd\n")
    opened = open_vector_file(tmp_path / "f.npy", ids=tmp_path / "ids.txt")
    rows, ids, read, problems = read_all(opened)
    assert (opened.dim, opened.total) == (3, 4)
    assert rows == [1, 2, 3, 4] and ids == ["a", "b", "c", "d"] and problems == []
    np.testing.assert_array_equal(read, vectors)


def test_ids_may_come_from_a_csv_column(tmp_path):
    np.save(tmp_path / "f.npy", np.ones((2, 2), np.float64))
    (tmp_path / "ids.csv").write_text("ra,objid\n1,x\n2,y\n")
    rows, ids, read, _ = read_all(open_vector_file(tmp_path / "f.npy", ids=tmp_path / "ids.csv", id_column="objid"))
    assert ids == ["x", "y"] and read.dtype == np.float32


def test_nan_infinite_and_float16_overflow_are_named_by_row_and_column(tmp_path):
    vectors = np.zeros((4, 3), np.float32)
    vectors[1, 2], vectors[2, 0], vectors[3, 1] = np.nan, np.inf, 1e6
    np.save(tmp_path / "f.npy", vectors)
    (tmp_path / "ids.txt").write_text("a\nb\nc\nd\n")
    rows, ids, _, problems = read_all(open_vector_file(tmp_path / "f.npy", ids=tmp_path / "ids.txt"))
    assert rows == [1] and ids == ["a"]
    assert [(row, column) for row, column, _ in problems] == [(2, "value 3"), (3, "value 1"), (4, "value 2")]
    assert "NaN" in problems[0][2] and "infinite" in problems[1][2] and "float16" in problems[2][2]


def test_an_npy_array_without_ids_or_with_too_few_is_refused(tmp_path):
    np.save(tmp_path / "f.npy", np.ones((3, 2), np.float32))
    (tmp_path / "ids.txt").write_text("a\nb\n")
    with pytest.raises(VectorFileError, match="name the ids file"):
        open_vector_file(tmp_path / "f.npy")
    with pytest.raises(VectorFileError, match="2 ids for the 3 vectors"):
        open_vector_file(tmp_path / "f.npy", ids=tmp_path / "ids.txt")


def test_an_npy_array_that_is_not_a_table_of_numbers_is_refused(tmp_path):
    np.save(tmp_path / "flat.npy", np.ones(5, np.float32))
    (tmp_path / "ids.txt").write_text("a\n")
    with pytest.raises(VectorFileError, match=r"shape \(5,\)"):
        open_vector_file(tmp_path / "flat.npy", ids=tmp_path / "ids.txt")


def test_a_csv_row_of_another_length_or_with_text_is_named_and_left_out(tmp_path):
    (tmp_path / "f.csv").write_text("id,f0,f1,f2\nx,1,2,3\ny,1,2\nz,1,oops,3\n,1,2,3\nw,0.5,nan,1\n")
    rows, ids, read, problems = read_all(open_vector_file(tmp_path / "f.csv"))
    assert rows == [2] and ids == ["x"] and read.tolist() == [[1, 2, 3]]
    assert sorted((row, column or "") for row, column, _ in problems) == [(3, ""), (4, "f1"), (5, "id"), (6, "f1")]
    assert "2 values" in problems[0][2] and "'oops' is not a number" in problems[1][2]


def test_a_csv_without_its_id_column_is_refused_naming_the_columns(tmp_path):
    (tmp_path / "f.csv").write_text("objid,f0\nx,1\n")
    with pytest.raises(VectorFileError, match="no 'id' column.*objid"):
        open_vector_file(tmp_path / "f.csv")


def test_chunks_stay_small_whatever_the_file(tmp_path):
    n, dim = chunk_rows(64) * 2 + 5, 64
    np.save(tmp_path / "f.npy", np.ones((n, dim), np.float32))
    (tmp_path / "ids.txt").write_text("".join(f"g{i}\n" for i in range(n)))
    sizes = [len(chunk.ids) for chunk in open_vector_file(tmp_path / "f.npy", ids=tmp_path / "ids.txt").chunks([])]
    assert sizes == [chunk_rows(64), chunk_rows(64), 5]
    assert chunk_rows(512) * 512 * 4 <= 32 << 20


def test_parquet_with_a_list_column_names_rows_of_another_length(tmp_path):
    table = pa.table({"id": ["a", "b", "c"], "vector": pa.array([[1.0, 2.0], [3.0], [5.0, 6.0]])})
    pq.write_table(table, tmp_path / "f.parquet")
    rows, ids, read, problems = read_all(open_vector_file(tmp_path / "f.parquet"))
    assert rows == [1, 3] and ids == ["a", "c"] and read.tolist() == [[1, 2], [5, 6]]
    assert problems == [(2, "vector", "1 values, but the other rows have 2")]


def test_parquet_with_one_column_per_component_and_integer_ids(tmp_path):
    pq.write_table(pa.table({"id": [7, 8], "x": [1.0, 2.0], "y": [3, 4]}), tmp_path / "f.parquet",
                   row_group_size=1)
    rows, ids, read, problems = read_all(open_vector_file(tmp_path / "f.parquet"))
    assert ids == ["7", "8"] and read.tolist() == [[1, 3], [2, 4]] and rows == [1, 2] and problems == []


def test_parquet_with_a_text_column_is_refused(tmp_path):
    pq.write_table(pa.table({"id": ["a"], "x": [1.0], "note": ["hi"]}), tmp_path / "f.parquet")
    with pytest.raises(VectorFileError, match="'note'.*not numbers"):
        open_vector_file(tmp_path / "f.parquet")


def test_without_pyarrow_the_error_says_what_to_install(tmp_path, monkeypatch):
    pq.write_table(pa.table({"id": ["a"], "x": [1.0]}), tmp_path / "f.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(VectorFileError, match=r"needs pyarrow: pip install pyarrow==26\.0\.1"):
        open_vector_file(tmp_path / "f.parquet")
