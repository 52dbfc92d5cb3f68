"""The "subjects" export: a Zooniverse subject set, a folder (or a zip of one) with the images and the manifest CSV
that the Project Builder's uploader and panoptes-cli (``panoptes subject-set upload-subjects SET manifest.csv``)
read: one row per subject, the image's file name first, then metadata columns.

Metadata conventions (Zooniverse's Project Builder manual, "What is a manifest?"): a column whose name starts with
"#" or "//" is never shown to volunteers and comes back in the classification export's subject_data; one starting
with "!" is hidden while classifying but shown on Talk; any other is shown in both. Every column but the image's
is "#" here: the galaxy's ids, its coordinates and why it was chosen could lead a volunteer to a published
classification or to the model's doubt, on Talk as well as while classifying. ``#external_id`` (with ``#dataset``)
is the key a Panoptes classification export is matched back to the galaxy by.

The image files are named subject_0001.jpg... in a seeded shuffle, so that neither the name nor its number follows
the galaxy's id, class or rank. Formats Zooniverse does not take (WebP) are converted to PNG. No cell is left empty:
panoptes-cli takes an empty cell of its first row for the manifest's folder and stops.
"""

import csv
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from labeling.models import Dataset, Galaxy
from labeling.services.exports.subject_choice import Chosen

MANIFEST = "manifest.csv"
IMAGE_COLUMN = "image"
# "#galaxy_pk", not "#galaxy_id": the Panoptes classification import tries a "galaxy_id" key as an external id.
HIDDEN = ("#external_id", "#dataset", "#galaxy_pk", "#ra", "#dec", "#reason")
ZOONIVERSE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif"}
# panoptes-cli refuses a larger file (MAX_UPLOAD_FILE_SIZE), as the Project Builder does.
MAX_FILE_BYTES = 1024 * 1024
MISSING = "nan"


def subject_set_write(*, dataset: Dataset, chosen: Chosen, out: Path, seed: int = 0) -> dict:
    """Write the chosen galaxies as a subject set: ``out`` is a new (or empty) folder, or a file ending ".zip"
    holding the same files. Written beside ``out`` and renamed at the end: a failure leaves nothing behind.

    Returns:
        ``{"subjects": n, "out": path, "converted": n, "too_large": [file names over 1 MB]}``.

    Raises:
        ValueError: when nothing was chosen, ``out`` is a folder that is not empty or a file that is not a zip, or
            a chosen galaxy's image file is missing (naming it).
    """
    if not chosen.galaxy_ids:
        raise ValueError(f"no galaxies with an image were chosen from dataset {dataset.name!r}: nothing to upload")
    zipped = out.suffix.lower() == ".zip"
    if zipped and out.is_dir():
        raise ValueError(f"--out {out}: is a folder; a zip is written to a file name ending .zip")
    if not zipped and (out.is_file() or (out.is_dir() and any(out.iterdir()))):
        raise ValueError(f"--out {out}: already holds files; give a new or empty folder (or a name ending .zip), "
                         f"so that the uploader sees this subject set alone")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    work.chmod(0o755)  # mkdtemp's 0700 would keep the folder from the colleague who uploads it
    try:
        summary = _write_folder(dataset, chosen, work, seed)
        if zipped:
            handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
            os.close(handle)
            try:
                # Images are compressed already: stored, not deflated again, except the manifest.
                with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
                    for path in sorted(work.iterdir()):
                        archive.write(path, path.name, compress_type=zipfile.ZIP_DEFLATED if path.name == MANIFEST
                                      else zipfile.ZIP_STORED)
                os.replace(temporary, out)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            shutil.rmtree(work)
        else:
            if out.is_dir():
                out.rmdir()  # empty, checked above
            os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {**summary, "out": str(out)}


def _write_folder(dataset: Dataset, chosen: Chosen, folder: Path, seed: int) -> dict:
    storage = Galaxy._meta.get_field("image").storage
    galaxies = {pk: (external_id, image, ra, dec) for pk, external_id, image, ra, dec in Galaxy.objects.filter(
        dataset=dataset, pk__in=chosen.galaxy_ids).values_list("pk", "external_id", "image", "ra", "dec")}
    n = len(chosen.galaxy_ids)
    width = max(4, len(str(n)))
    numbers = np.random.default_rng(seed).permutation(n) + 1
    coordinates = any(galaxies[pk][2] is not None or galaxies[pk][3] is not None for pk in chosen.galaxy_ids)
    columns = [IMAGE_COLUMN, *(c for c in HIDDEN if coordinates or c not in ("#ra", "#dec"))]
    converted, too_large = 0, []
    with open(folder / MANIFEST, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for position, (pk, reason) in enumerate(zip(chosen.galaxy_ids, chosen.reasons, strict=True)):
            external_id, image, ra, dec = galaxies[pk]
            source = Path(storage.path(image))
            if not image or not source.is_file():
                raise ValueError(f"galaxy {external_id!r} (id {pk}): its image file {image or '(none)'} is missing")
            stem = f"subject_{numbers[position]:0{width}d}"
            name, was_converted = _copy_image(source, folder, stem)
            converted += was_converted
            if (folder / name).stat().st_size > MAX_FILE_BYTES:
                too_large.append(name)
            values = {IMAGE_COLUMN: name, "#galaxy_pk": pk, "#external_id": external_id, "#dataset": dataset.name,
                      "#ra": MISSING if ra is None else ra, "#dec": MISSING if dec is None else dec, "#reason": reason}
            writer.writerow([values[column] for column in columns])
    return {"subjects": n, "converted": converted, "too_large": too_large}


def _copy_image(source: Path, folder: Path, stem: str) -> tuple[str, bool]:
    """The file name written in ``folder`` and whether the image had to be converted (to PNG)."""
    suffix = source.suffix.lower()
    if suffix in ZOONIVERSE_SUFFIXES:
        name = stem + (".jpg" if suffix == ".jpeg" else suffix)
        shutil.copyfile(source, folder / name)
        return name, False
    name = f"{stem}.png"
    with Image.open(source) as image:
        image.save(folder / name, format="PNG")
    return name, True
