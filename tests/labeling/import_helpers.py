"""Helpers shared by the galaxy import tests: what the database and MEDIA_ROOT hold, and small real inputs."""

import csv
import shutil
import struct
import zlib
from pathlib import Path

from labeling.models import Dataset, ExpertLabel, Galaxy, LabelClass, LabelSchema


def media_files(media_root: Path) -> list[str]:
    root = Path(media_root)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def snapshot(media_root: Path) -> dict:
    """Everything an import could write: row counts and the files under MEDIA_ROOT."""
    return {
        "datasets": Dataset.objects.count(),
        "galaxies": Galaxy.objects.count(),
        "labels": ExpertLabel.objects.count(),
        "schemas": LabelSchema.objects.count(),
        "classes": LabelClass.objects.count(),
        "files": media_files(media_root),
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    fieldnames = fieldnames or list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return path


def small_galaxy10_folder(demo_data: Path, target: Path, count: int = 6) -> Path:
    """A folder with ``count`` real Galaxy10 JPEGs (different classes) and a labels.csv in the bundled layout."""
    rows = read_csv(demo_data / "galaxy10" / "labels.csv")[::11][:count]
    (target / "images").mkdir(parents=True)
    for row in rows:
        shutil.copy(demo_data / "galaxy10" / row["file"], target / row["file"])
    write_csv(target / "labels.csv", rows)
    return target


def png_header_only(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims width x height RGB pixels, with almost no pixel data: a
    decompression bomb stand-in that must be refused before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")
