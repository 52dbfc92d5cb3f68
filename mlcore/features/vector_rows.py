"""What the readers of outside feature vectors share (mlcore.features.vector_files for .npy and CSV,
mlcore.features.vector_parquet for Parquet): the chunks they hand on, the problems they report, and the checks of
every row (finite, within the float16 range the feature store keeps)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: the store keeps float16; larger values would become inf
CHUNK_BYTES = 32 << 20  # float32 bytes per chunk: bounded memory whatever the file's size
PARQUET_HINT = "reading Parquet needs pyarrow: pip install pyarrow==26.0.1 (the version pyproject.toml pins)"


class VectorFileError(ValueError):
    """A file that cannot be read as vectors at all (unreadable, no id column, an array of the wrong shape)."""


@dataclass(frozen=True)
class Problem:
    """One bad row: ``row`` and ``column`` as a person finds them (column None when the whole row is at fault)."""

    row: int
    column: str | None
    message: str


@dataclass
class Chunk:
    """Good rows of one chunk: row numbers (n,), ids as text (n), vectors float32 (n, dim)."""

    rows: np.ndarray
    ids: list[str]
    vectors: np.ndarray


def chunk_rows(dim: int) -> int:
    """Rows per chunk for ``dim``-d vectors: about CHUNK_BYTES of float32."""
    return max(1, CHUNK_BYTES // (4 * max(1, dim)))


class VectorFile:
    """An open vector file: ``dim``, ``total`` (rows, when known before reading), ``id_column`` (what problems with
    an id name as their column), and ``chunks(problems)``, which yields the good rows chunk by chunk and appends a
    Problem to ``problems`` for each bad one.

    Open one with :func:`open_vector_file`.
    """

    def __init__(self, path: Path, dim: int, total: int | None, id_column: str):
        self.path, self.dim, self.total, self.id_column = path, dim, total, id_column

    def chunks(self, problems: list[Problem]) -> Iterator[Chunk]:  # pragma: no cover - each format has its own
        raise NotImplementedError

    def _good(self, rows: np.ndarray, ids: list[str], vectors: np.ndarray, columns: list[str],
              problems: list[Problem]) -> Chunk:
        """The chunk less its bad rows: non-finite or out-of-range values, empty ids."""
        good = checked_rows(vectors, rows, columns, problems)
        for i, external_id in enumerate(ids):
            if good[i] and not external_id:
                problems.append(Problem(int(rows[i]), self.id_column, "empty id"))
                good[i] = False
        if good.all():
            return Chunk(rows, ids, vectors)
        return Chunk(rows[good], [external_id for external_id, keep in zip(ids, good, strict=True) if keep],
                     vectors[good])


def checked_rows(vectors: np.ndarray, rows: np.ndarray, columns: list[str], problems: list[Problem]) -> np.ndarray:
    """Which rows of ``vectors`` (float32 (n, dim)) are good; a problem for each bad one, naming its first bad
    column: NaN, infinite, or beyond the float16 range."""
    finite = np.isfinite(vectors)
    with np.errstate(invalid="ignore"):
        in_range = np.abs(vectors) <= FLOAT16_MAX
    fine = finite & in_range
    good = fine.all(axis=1)
    for i in np.flatnonzero(~good):
        j = int(np.argmin(fine[i]))
        value = float(vectors[i, j])
        why = "NaN" if np.isnan(value) else "infinite" if not finite[i, j] else \
            f"{value:g} is beyond the float16 range (±{FLOAT16_MAX:g}) the feature store keeps"
        problems.append(Problem(int(rows[i]), columns[j], f"not a finite number: {why}" if not finite[i, j] else why))
    return good
