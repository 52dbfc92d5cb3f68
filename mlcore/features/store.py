"""Feature vectors on disk, keyed by galaxy id, memory-mapped for lookups.

A store is a directory of three files:

- ``vectors.bin``: the vectors, row after row, little-endian float16 or float32 (no header, so it memory-maps as is);
- ``keys.bin``: one little-endian int64 galaxy id per row, in the same order;
- ``meta.json``: format, dim, dtype and the committed row ``count``.

Appending writes the new rows past the committed end of both data files, flushes them to disk, then commits the new
count by replacing ``meta.json`` atomically (write a temporary file, ``os.replace``). A crash anywhere before that
replace leaves the old count in force: the bytes beyond it are ignored on open and cut off by the next append. So
extraction can append batch after batch and resume after a crash without ever reading a half-written store.

One writer at a time: ``append`` holds an exclusive ``flock`` on ``lock`` and first catches up with rows another
process committed since this one opened the store. Readers need no lock; an open store sees the rows committed up to
its own last append or open.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

FORMAT = "mlcore-feature-store"
VERSION = 1
DTYPES = {"float16": np.dtype("<f2"), "float32": np.dtype("<f4")}
KEY_DTYPE = np.dtype("<i8")
META, VECTORS, KEYS, LOCK = "meta.json", "vectors.bin", "keys.bin", "lock"


class FeatureStore:
    """Append-only vectors of fixed ``dim`` keyed by unique int64 galaxy ids.

    Build one with :meth:`create`, :meth:`open` or :meth:`open_or_create`, not with the constructor.

    Memory: the vectors stay on disk (lookups gather rows from a read-only memory map); the keys are memory-mapped
    too, and a sorted copy of them plus each one's row (16 bytes per vector) is held in memory for lookups.
    """

    def __init__(self, path: Path, *, dim: int, dtype: str) -> None:
        self._path = Path(path)
        self._dim = dim
        self._dtype = dtype
        self._count = 0
        self._keys = self._sorted_keys = self._sorted_rows = np.empty(0, KEY_DTYPE)  # set by _load
        self._vectors: np.ndarray | None = None  # the memmap, made on first use and again after each append
        self._lookup: np.ndarray | None = None  # a second map, for random access (see _vectors_for_lookup)

    @classmethod
    def create(cls, path: str | os.PathLike, *, dim: int, dtype: str = "float16") -> FeatureStore:
        """An empty store in the directory ``path`` (created if missing).

        Raises:
            ValueError: when dim is not a positive integer or dtype is not "float16" or "float32".
            FileExistsError: when ``path`` is a file or a directory that is not empty.
        """
        path = Path(path)
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if str(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(f"cannot create a feature store at {path}: it exists and is not an empty directory")
        path.mkdir(parents=True, exist_ok=True)
        for name in (VECTORS, KEYS, LOCK):
            (path / name).touch()
        store = cls(path, dim=int(dim), dtype=str(dtype))
        store._write_meta(0)
        return store

    @classmethod
    def open(cls, path: str | os.PathLike) -> FeatureStore:
        """The store in the directory ``path``, with every committed row.

        Raises:
            FileNotFoundError: when ``path`` does not exist.
            ValueError: when ``path`` is not a feature store, or its files are shorter than its committed count.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no feature store at {path}: it does not exist")
        meta = _read_meta(path)
        store = cls(path, dim=meta["dim"], dtype=meta["dtype"])
        store._load(meta["count"])
        return store

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, *, dim: int, dtype: str = "float16") -> FeatureStore:
        """The store at ``path`` if it holds one (or its directory is empty), else a new one.

        Raises:
            ValueError: when the existing store has another dim or dtype than asked.
        """
        path = Path(path)
        if not (path / META).exists():
            return cls.create(path, dim=dim, dtype=dtype)
        store = cls.open(path)
        if store.dim != dim or store.dtype != str(dtype):
            raise ValueError(f"the feature store at {path} holds dim={store.dim} dtype={store.dtype}, "
                             f"not dim={dim} dtype={dtype}")
        return store

    @property
    def path(self) -> Path:
        return self._path

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def dtype(self) -> str:
        """"float16" or "float32": how the vectors are kept on disk (``get`` always returns float32)."""
        return self._dtype

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"FeatureStore({str(self._path)!r}, n={self._count}, dim={self._dim}, dtype={self._dtype})"

    def keys(self) -> np.ndarray:
        """Every key, int64 (n,), in insertion order (read-only)."""
        return self._keys

    def vectors(self) -> np.ndarray:
        """Every vector, (n, dim) in the store dtype and row order of :meth:`keys`: a read-only ``np.memmap``.

        An empty store gives a read-only empty array instead (a zero-length file cannot be mapped).
        """
        if self._vectors is None:
            if self._count == 0:
                empty = np.empty((0, self._dim), DTYPES[self._dtype])
                empty.flags.writeable = False
                return empty
            self._vectors = np.memmap(self._path / VECTORS, dtype=DTYPES[self._dtype], mode="r",
                                      shape=(self._count, self._dim))
        return self._vectors

    def has(self, keys) -> np.ndarray:
        """Whether each of ``keys`` (int array-like (m,)) is stored: bool (m,)."""
        return self._rows_of(_checked_keys(keys))[1]

    def get(self, keys) -> np.ndarray:
        """The vectors of ``keys`` (int array-like (m,)), float32 (m, dim), in the order asked.

        Raises:
            ValueError: when keys is not one-dimensional or not integers.
            KeyError: naming (up to ten of) the keys that are not stored.
        """
        keys = _checked_keys(keys)
        rows, found = self._rows_of(keys)
        if not found.all():
            missing = keys[~found]
            shown = ", ".join(str(k) for k in missing[:10]) + (", ..." if len(missing) > 10 else "")
            raise KeyError(f"{len(missing)} key(s) not in the feature store at {self._path}: {shown}")
        if len(rows) == 0:
            return np.empty((0, self._dim), np.float32)
        return np.array(self._vectors_for_lookup()[rows], dtype=np.float32)  # reads only the pages of those rows

    def iter_batches(self, batch_size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(keys int64 (b,), vectors float32 (b, dim)) for consecutive rows, in insertion order.

        Raises:
            ValueError: when batch_size < 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        vectors = self.vectors()
        for start in range(0, self._count, batch_size):
            stop = min(start + batch_size, self._count)
            yield np.array(self._keys[start:stop]), np.array(vectors[start:stop], dtype=np.float32)

    def append(self, keys, vectors) -> None:
        """Add the rows ``keys`` int (n,) -> ``vectors`` float (n, dim), converted to the store dtype.

        All or nothing: a refused call writes nothing, and a crash part-way leaves the store as it was.

        Raises:
            ValueError: on a wrong shape or dimension, mismatched lengths, a key already stored or repeated within
                the call, a non-finite value, or a value too large for float16 in a float16 store.
        """
        keys = _checked_keys(keys)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self._dim:
            raise ValueError(f"vectors must have shape (n, {self._dim}), got {vectors.shape}")
        if vectors.shape[0] != len(keys):
            raise ValueError(f"{len(keys)} keys but {vectors.shape[0]} vectors: shapes {keys.shape} and "
                             f"{vectors.shape}")
        if vectors.dtype.kind not in "fiu":
            raise ValueError(f"vectors must be numbers, got dtype {vectors.dtype}")
        if len(keys) == 0:
            return
        ordered = np.sort(keys)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if len(repeated):
            raise ValueError(f"keys repeated within one append: {np.unique(repeated)[:10].tolist()}")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinite values")
        with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
            stored = vectors.astype(DTYPES[self._dtype])
        if not np.isfinite(stored).all():
            raise ValueError(f"vectors hold values beyond the {self._dtype} range (largest magnitude "
                             f"{float(np.abs(vectors).max()):.6g})")
        with open(self._path / LOCK, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            committed = _read_meta(self._path)["count"]
            if committed != self._count:
                self._load(committed)  # another process appended since we opened: check against its rows too
            taken = self.has(keys)
            if taken.any():
                raise ValueError(f"keys already in the feature store at {self._path}: {keys[taken][:10].tolist()}")
            _write_past_end(self._path / VECTORS, self._count * self._row_bytes, stored)
            _write_past_end(self._path / KEYS, self._count * KEY_DTYPE.itemsize, keys.astype(KEY_DTYPE))
            self._write_meta(self._count + len(keys))  # the commit point
            self._load(self._count + len(keys))

    @property
    def _row_bytes(self) -> int:
        return self._dim * DTYPES[self._dtype].itemsize

    def _load(self, count: int) -> None:
        """Map ``count`` committed rows and rebuild the sorted key lookup."""
        for name, row_bytes in ((VECTORS, self._row_bytes), (KEYS, KEY_DTYPE.itemsize)):
            size = (self._path / name).stat().st_size if (self._path / name).exists() else -1
            if size < count * row_bytes:
                raise ValueError(f"the feature store at {self._path} is damaged: {name} holds {size} bytes, "
                                 f"fewer than the {count * row_bytes} its {count} committed rows need")
        self._count = count
        self._vectors = self._lookup = None
        if count == 0:
            self._keys = np.empty(0, KEY_DTYPE)
            self._keys.flags.writeable = False
        else:
            self._keys = np.memmap(self._path / KEYS, dtype=KEY_DTYPE, mode="r", shape=(count,))
        self._sorted_rows = np.argsort(self._keys, kind="stable")
        self._sorted_keys = np.asarray(self._keys[self._sorted_rows], dtype=np.int64)

    def _vectors_for_lookup(self) -> np.ndarray:
        """The vectors mapped with MADV_RANDOM: a lookup reads the page it needs, not the readahead window around it
        that suits the sequential scans of ``vectors()`` and ``iter_batches``."""
        if self._lookup is None:
            with open(self._path / VECTORS, "rb") as source:
                mapped = mmap.mmap(source.fileno(), self._count * self._row_bytes, access=mmap.ACCESS_READ)
            if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_RANDOM"):
                mapped.madvise(mmap.MADV_RANDOM)
            self._lookup = np.frombuffer(mapped, DTYPES[self._dtype]).reshape(self._count, self._dim)
        return self._lookup

    def _rows_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of each key, or 0 where absent; whether each key is present)."""
        if self._count == 0:
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
        at = np.minimum(np.searchsorted(self._sorted_keys, keys), self._count - 1)
        found = self._sorted_keys[at] == keys
        return np.where(found, self._sorted_rows[at], 0), found

    def _write_meta(self, count: int) -> None:
        meta = {"format": FORMAT, "version": VERSION, "dim": self._dim, "dtype": self._dtype, "count": count,
                "byte_order": "little"}
        temporary = self._path / f"{META}.tmp"
        with open(temporary, "w") as out:
            json.dump(meta, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self._path / META)
        directory = os.open(self._path, os.O_RDONLY)
        try:
            os.fsync(directory)  # so the rename itself survives a power cut
        finally:
            os.close(directory)


def _write_past_end(path: Path, committed_bytes: int, rows: np.ndarray) -> None:
    """Cut ``path`` to its committed length (dropping a crashed append's leftovers), add ``rows``, flush to disk."""
    with open(path, "r+b") as out:
        out.truncate(committed_bytes)
        out.seek(committed_bytes)
        out.write(np.ascontiguousarray(rows).data)
        out.flush()
        os.fsync(out.fileno())


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads((path / META).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is not a feature store: it has no {META}") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a feature store: {META} is unreadable ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a feature store: {META} does not say format {FORMAT!r}")
    if meta.get("version") != VERSION or meta.get("dtype") not in DTYPES:
        raise ValueError(f"the feature store at {path} has version {meta.get('version')} dtype {meta.get('dtype')}, "
                         f"this code reads version {VERSION} with dtype in {sorted(DTYPES)}")
    if not all(isinstance(meta.get(name), int) and meta[name] >= low for name, low in (("dim", 1), ("count", 0))):
        raise ValueError(f"the feature store at {path} has a bad dim or count in {META}: {meta}")
    return meta


def _checked_keys(keys) -> np.ndarray:
    """``keys`` as an int64 (n,) array; an empty list is fine."""
    array = np.asarray(keys)
    if array.ndim != 1:
        raise ValueError(f"keys must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.empty(0, np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"keys must be integers, got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise ValueError("keys must fit in int64")
    return array.astype(np.int64, copy=False)
