"""Feature vectors made elsewhere, read from a file chunk by chunk: a NumPy ``.npy`` array with an ids file beside
it, a CSV with an id column, or a Parquet file with an id column.

A million 512-d vectors are 2 GB as float32, so nothing here holds a whole file: the ``.npy`` array is memory-mapped
and sliced, a CSV is read row by row, a Parquet file batch by batch, and each chunk is handed on as float32 rows with
the ids and row numbers that belong to them. Bad rows (a wrong length, a value that is not a finite number, or one
beyond the float16 range the feature store keeps) are left out of the chunk and reported with their row and column,
so that a caller can list every problem and write nothing.

Rows are numbered as a person finds them: in a CSV the header is row 1 and the first vector row 2; in an ``.npy``
array, its ids file and a Parquet file the first vector is row 1.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mlcore.features.vector_rows import Chunk, Problem, VectorFile, VectorFileError, chunk_rows

SUFFIXES = (".npy", ".csv", ".csv.gz", ".parquet", ".pq")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((suffix for suffix in SUFFIXES if name.endswith(suffix)), path.suffix.lower())


def open_vector_file(path: str | Path, *, ids: str | Path | None = None, id_column: str = "id") -> VectorFile:
    """The vectors of ``path``, by its suffix: ``.npy`` (with ``ids``: a ``.txt`` file of one id per line, or a
    ``.csv`` with ``id_column``), ``.csv``/``.csv.gz`` or ``.parquet``/``.pq`` (each with ``id_column``; every other
    column is one component of the vector, in order, or, in Parquet, one list column holds the whole vector).

    Raises:
        VectorFileError: naming the file and what is wrong with it as a whole (rows are checked as they are read).
    """
    path = Path(path)
    if not path.is_file():
        raise VectorFileError(f"{path}: no such file")
    suffix = _suffix(path)
    if suffix == ".npy":
        if ids is None:
            raise VectorFileError(f"{path.name}: an .npy array holds no ids: name the ids file beside it (--ids "
                                  "ids.txt with one id per line, or ids.csv with an id column)")
        return _NpyFile(path, Path(ids), id_column)
    if ids is not None:
        raise VectorFileError(f"{path.name}: the ids of a {suffix} file are its {id_column!r} column; an ids file "
                              "goes only with an .npy array")
    if suffix in (".csv", ".csv.gz"):
        return _CsvFile(path, id_column)
    if suffix in (".parquet", ".pq"):
        from mlcore.features.vector_parquet import ParquetVectors

        return ParquetVectors(path, id_column)
    raise VectorFileError(f"{path.name}: not a vector file this reads ({', '.join(SUFFIXES)})")


class _NpyFile(VectorFile):
    def __init__(self, path: Path, ids_path: Path, id_column: str):
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise VectorFileError(f"{path.name}: not a readable .npy array ({exc})") from None
        if array.ndim != 2 or array.shape[1] < 1:
            raise VectorFileError(f"{path.name}: holds an array of shape {array.shape}; vectors are a (rows, dim) "
                                  "array")
        if array.dtype.kind not in "fiu":
            raise VectorFileError(f"{path.name}: holds {array.dtype} values, not numbers")
        if not ids_path.is_file():
            raise VectorFileError(f"{ids_path}: no such file")
        super().__init__(path, int(array.shape[1]), int(array.shape[0]), id_column)
        self._ids_path = ids_path
        del array  # mapped again for each chunk (see chunks)
        self._columns = [f"value {j + 1}" for j in range(self.dim)]
        n_ids = sum(1 for _ in self._ids())
        if n_ids != self.total:
            raise VectorFileError(f"{ids_path.name} holds {n_ids} ids for the {self.total} vectors of {path.name}: "
                                  "one id per row, in the same order")

    def _ids(self) -> Iterator[str]:
        """The ids in row order: a .txt file's lines, or a .csv file's ``id_column`` (its only column will do)."""
        name = self._ids_path.name
        try:
            with _text(self._ids_path) as handle:
                if _suffix(self._ids_path) in (".csv", ".csv.gz"):
                    reader = csv.reader(handle)
                    header = [column.strip() for column in next(reader, [])]
                    if self.id_column not in header and len(header) != 1:
                        raise VectorFileError(f"{name}, row 1: no {self.id_column!r} column (columns: "
                                              f"{', '.join(header) or 'none'})")
                    at = header.index(self.id_column) if self.id_column in header else 0
                    for fields in reader:
                        yield fields[at].strip() if at < len(fields) else ""
                else:
                    for line in handle:
                        yield line.strip()
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise VectorFileError(f"{name}: cannot be read as ids ({exc})") from None

    def chunks(self, problems: list[Problem]) -> Iterator[Chunk]:
        size = chunk_rows(self.dim)
        ids = self._ids()
        for start in range(0, self.total, size):
            stop = min(start + size, self.total)
            # A fresh map per chunk, dropped once the rows are copied out: pages read through a map stay in the
            # process's resident memory while it is mapped, which would grow with the file to its whole size.
            mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
            vectors = np.array(mapped[start:stop], dtype=np.float32)  # reads these rows only
            del mapped
            chunk_ids = [next(ids) for _ in range(stop - start)]
            yield self._good(np.arange(start + 1, stop + 1), chunk_ids, vectors, self._columns, problems)


def _text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


class _CsvFile(VectorFile):
    def __init__(self, path: Path, id_column: str):
        try:
            with _text(path) as handle:
                header = [column.strip() for column in next(csv.reader(handle), [])]
        except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
            raise VectorFileError(f"{path.name}: not a readable CSV file ({exc})") from None
        if id_column not in header:
            raise VectorFileError(f"{path.name}, row 1: no {id_column!r} column (columns: "
                                  f"{', '.join(header[:10]) or 'none'}{', ...' if len(header) > 10 else ''})")
        repeated = sorted({column for column in header if header.count(column) > 1})
        if repeated:
            raise VectorFileError(f"{path.name}, row 1: column(s) {', '.join(map(repr, repeated))} appear twice")
        if len(header) < 2:
            raise VectorFileError(f"{path.name}, row 1: only an id column; one column per vector component needed")
        super().__init__(path, len(header) - 1, None, id_column)
        self._header, self._at = header, header.index(id_column)
        self._columns = [column for i, column in enumerate(header) if i != self._at]

    def chunks(self, problems: list[Problem]) -> Iterator[Chunk]:
        size, width = chunk_rows(self.dim), len(self._header)
        rows, ids, vectors = [], [], np.empty((size, self.dim), np.float32)
        try:
            with _text(self.path) as handle:
                reader = csv.reader(handle)
                next(reader, None)
                for number, fields in enumerate(reader, start=2):
                    if not fields:
                        continue
                    if len(fields) != width:
                        problems.append(Problem(number, None, f"{len(fields) - 1} values and an id, but the header "
                                                              f"has {self.dim} value columns"))
                        continue
                    external_id = fields.pop(self._at).strip()
                    try:
                        vectors[len(rows)] = np.array(fields, dtype=np.float32)
                    except ValueError:
                        problems.append(_first_unreadable(number, fields, self._columns))
                        continue
                    rows.append(number)
                    ids.append(external_id)
                    if len(rows) == size:
                        yield self._good(np.array(rows), ids, vectors.copy(), self._columns, problems)
                        rows, ids = [], []
        except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
            raise VectorFileError(f"{self.path.name}: not a readable CSV file ({exc})") from None
        if rows:
            yield self._good(np.array(rows), ids, vectors[:len(rows)].copy(), self._columns, problems)


def _first_unreadable(number: int, fields: list[str], columns: list[str]) -> Problem:
    for column, text in zip(columns, fields, strict=True):
        try:
            float(text)
        except ValueError:
            return Problem(number, column, f"{text.strip()!r} is not a number" if text.strip() else "empty")
    return Problem(number, None, "a value is not a number")  # pragma: no cover - numpy and float() agree
