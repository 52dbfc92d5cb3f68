"""Feature vectors in a Parquet file, opened by mlcore.features.vector_files (which reads the other formats): an id
column and either one number column per component or one list column holding each whole vector. Read batch by
batch, so a file of any size is held one chunk at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mlcore.features.vector_rows import PARQUET_HINT, Chunk, Problem, VectorFile, VectorFileError, chunk_rows


class ParquetVectors(VectorFile):
    """Either every column but the id is one component (numbers), or one list column holds each whole vector."""

    def __init__(self, path: Path, id_column: str):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise VectorFileError(f"{path.name}: {PARQUET_HINT}") from None
        try:
            self._file = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise VectorFileError(f"{path.name}: not a readable Parquet file ({exc})") from None
        schema = self._file.schema_arrow
        names = list(schema.names)
        if id_column not in names:
            raise VectorFileError(f"{path.name}: no {id_column!r} column (columns: {', '.join(names[:10])}"
                                  f"{', ...' if len(names) > 10 else ''})")
        self._columns_used = [name for name in names if name != id_column]
        if not self._columns_used:
            raise VectorFileError(f"{path.name}: only an id column; vectors are needed")
        first = schema.field(self._columns_used[0]).type
        self._list = len(self._columns_used) == 1 and (pa.types.is_list(first) or pa.types.is_large_list(first)
                                                       or pa.types.is_fixed_size_list(first))
        if self._list:
            if not _numeric(first.value_type):
                raise VectorFileError(f"{path.name}: column {self._columns_used[0]!r} holds lists of "
                                      f"{first.value_type}, not numbers")
            dim = first.list_size if pa.types.is_fixed_size_list(first) else self._first_length()
            columns = [f"{self._columns_used[0]}[{j}]" for j in range(dim)]
        else:
            bad = [name for name in self._columns_used if not _numeric(schema.field(name).type)]
            if bad:
                raise VectorFileError(f"{path.name}: column(s) {', '.join(map(repr, bad[:10]))} hold "
                                      f"{schema.field(bad[0]).type}, not numbers (one column per component, or one "
                                      "list column)")
            dim, columns = len(self._columns_used), list(self._columns_used)
        super().__init__(path, dim, self._file.metadata.num_rows, id_column)
        self._columns = columns

    def _first_length(self) -> int:
        for batch in self._file.iter_batches(batch_size=1024, columns=self._columns_used):
            for value in batch.column(0).to_pylist():
                if value is not None:
                    return len(value)
        raise VectorFileError(f"{self.path.name}: column {self._columns_used[0]!r} holds no vector")

    def chunks(self, problems: list[Problem]) -> Iterator[Chunk]:
        start = 1
        for batch in self._file.iter_batches(batch_size=chunk_rows(self.dim),
                                             columns=[self.id_column, *self._columns_used]):
            n = batch.num_rows
            rows = np.arange(start, start + n)
            start += n
            ids = ["" if value is None else str(value).strip() for value in batch.column(0).to_pylist()]
            if self._list:
                vectors, good = self._list_vectors(batch.column(1), rows, problems)
            else:
                vectors = np.column_stack([np.asarray(batch.column(i).to_numpy(zero_copy_only=False),
                                                      dtype=np.float32) for i in range(1, batch.num_columns)])
                good = np.ones(n, bool)
            if not good.all():
                rows, vectors = rows[good], vectors[good]
                ids = [external_id for external_id, keep in zip(ids, good, strict=True) if keep]
            yield self._good(rows, ids, vectors, self._columns, problems)

    def _list_vectors(self, column, rows: np.ndarray, problems: list[Problem]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors of the rows whose list has ``dim`` values, zeros elsewhere; which rows those are)."""
        import pyarrow.compute as pc

        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        lengths = np.where(np.isnan(lengths.astype(float)), -1, lengths).astype(np.int64)
        good = lengths == self.dim
        for i in np.flatnonzero(~good):
            problems.append(Problem(int(rows[i]), self._columns_used[0], "empty" if lengths[i] < 0 else
                                    f"{lengths[i]} values, but the other rows have {self.dim}"))
        vectors = np.zeros((len(rows), self.dim), np.float32)
        if good.any():
            kept = column.filter(good) if not good.all() else column
            values = np.asarray(kept.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
            vectors[good] = values.reshape(-1, self.dim)
        return vectors, good


def _numeric(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
