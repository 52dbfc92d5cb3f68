"""The single-file format of a saved NeighbourIndex (mlcore/neighbours/index.py): header, keys and FAISS index together.

File = MAGIC, header length (uint64 LE), JSON header, keys (int64 LE), the FAISS index as ``faiss.write_index``
writes it. One file, written under a temporary name and renamed, so a reader sees the old index or the new one.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import faiss
import numpy as np

MAGIC = b"MLCNBR01"


def index_file_write(path: str | os.PathLike, *, header: dict, keys: np.ndarray, index: faiss.Index) -> None:
    """Write ``header`` (JSON-able, with "n" and "dim"), ``keys`` and ``index`` to ``path`` atomically."""
    path = Path(path)
    encoded = json.dumps(header).encode()
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as out:
            out.write(MAGIC + struct.pack("<Q", len(encoded)) + encoded)
            out.write(keys.astype("<i8").tobytes())
            faiss.write_index(index, faiss.PyCallbackIOWriter(out.write))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def index_file_read(path: str | os.PathLike) -> tuple[dict, np.ndarray, faiss.Index]:
    """(header, keys int64 (n,), FAISS index) from a file ``index_file_write`` wrote.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when ``path`` is not such a file, or is truncated or damaged.
    """
    path = Path(path)
    with open(path, "rb") as source:
        try:
            if source.read(len(MAGIC)) != MAGIC:
                raise ValueError("it does not start like one")
            (length,) = struct.unpack("<Q", source.read(8))
            header = json.loads(source.read(length))
            n, dim = int(header["n"]), int(header["dim"])
            keys = np.frombuffer(source.read(8 * n), dtype="<i8").astype(np.int64)
            if len(keys) != n:
                raise ValueError(f"it holds {len(keys)} of its {n} keys")
            # An IVF-PQ index would otherwise rebuild its table of precomputed distances on reading: see
            # mlcore/neighbours/ivfpq.py for why it goes without one.
            index = faiss.read_index(faiss.PyCallbackIOReader(source.read), faiss.IO_FLAG_SKIP_PRECOMPUTE_TABLE)
            if index.ntotal != n or index.d != dim or source.read(1):
                raise ValueError(f"its FAISS index ({index.ntotal} x {index.d}) does not match {n} x {dim}")
        except (ValueError, KeyError, TypeError, struct.error, RuntimeError) as error:
            raise ValueError(f"{path} is not a readable saved NeighbourIndex: {error}") from None
    return header, keys, index
