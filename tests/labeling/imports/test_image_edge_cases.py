"""Odd images along every path an image travels: the folder import (decode check, stored file, thumbnail), the
thumbnail page, and feature extraction. Each case is imported with an RGB thumbnail of the right size and sane
pixels, or refused with a problem line naming the file and the reason, writing nothing.

Choices, and why:

- A file's format is decided by its bytes, not its name: PNG bytes named .jpg are imported and stored as .png. Users
  rename files carelessly; refusing a good image over its name would only make them rename it back.
- Thumbnails convert as the model's input does (mlcore/features/pixels.py): 16-bit images by their own range (a plain
  conversion clipped them to white), transparency composited on black sky (a plain conversion showed whatever
  colour the see-through pixels held), CMYK through Pillow (which undoes Adobe's inverted CMYK).
- Only the first frame of a GIF is a galaxy; the others are ignored.
- TIFF and FITS are refused by name: a browser cannot show them, and converting would change the stored bytes.
"""

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from labeling.models import FeatureSet, Galaxy
from labeling.services.imports.galaxies import galaxies_import
from labeling.services.imports.reports import ImportFailed
from mlcore.features.store import FeatureStore
from tests.labeling.import_helpers import png_header_only, snapshot
from tests.labeling.ml_helpers import DEMO_GALAXY10, extracted

pytestmark = pytest.mark.django_db

RED, BLUE = (255, 0, 0), (0, 0, 255)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def halves(mode: str, left, right, size=(64, 64)) -> Image.Image:
    """An image whose left half is ``left`` and right half ``right``."""
    image = Image.new(mode, size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def sixteen_bit_ramp() -> bytes:
    """A 16-bit greyscale PNG whose values span 1000..3000 of 65535, as a raw sky exposure does."""
    values = np.linspace(1000, 3000, 64 * 64).reshape(64, 64).astype("<u2")
    return encoded(Image.frombytes("I;16", (64, 64), values.tobytes()), "PNG")


def palette_with_transparency() -> bytes:
    image = halves("P", 0, 1)
    image.putpalette([*RED, *BLUE] + [0] * 762)
    return encoded(image, "PNG", transparency=1)


def two_frame_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, BLUE)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])


def gif_header_only(width: int, height: int) -> bytes:
    """A GIF whose header claims width x height pixels (GIF's largest is 65535 a side), with no pixels."""
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00;"


def fits_image() -> bytes:
    """A minimal FITS file (2880-byte header of 80-character cards, then 16-bit pixels), as telescopes write."""
    cards = ["SIMPLE  =                    T", "BITPIX  =                   16", "NAXIS   =                    2",
             "NAXIS1  =                    8", "NAXIS2  =                    8", "END"]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode("ascii")
    return header + bytes(2880)


def real_jpeg() -> bytes:
    return (DEMO_GALAXY10 / "images" / "g10_class_5_0.jpg").read_bytes()


def real_png() -> bytes:
    return encoded(Image.open(io.BytesIO(real_jpeg())), "PNG")


@dataclass(frozen=True)
class Imported:
    """An image that is imported: its stored suffix, its size, and a check of its thumbnail's pixels."""

    make: Callable[[], bytes]
    suffix: str
    size: tuple[int, int]
    pixels: Callable[[np.ndarray], bool]


def near(colour, tolerance=40) -> Callable[[np.ndarray], bool]:
    return lambda pixels: bool(np.abs(pixels.astype(int) - colour).max() <= tolerance)


def left_right(left, right) -> Callable[[np.ndarray], bool]:
    def check(pixels):
        width = pixels.shape[1]
        return near(left)(pixels[:, :width // 2 - 4]) and near(right)(pixels[:, width // 2 + 4:])
    return check


def spans_the_range(pixels: np.ndarray) -> bool:
    return int(pixels.min()) < 20 and int(pixels.max()) > 235


def not_flat(pixels: np.ndarray) -> bool:
    return float(pixels.std()) > 5


IMPORTED = {
    "cmyk.jpg": Imported(lambda: encoded(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG"), ".jpg",
                         (64, 64), near(RED)),
    "sixteen_bit.png": Imported(sixteen_bit_ramp, ".png", (64, 64), spans_the_range),
    "grey.png": Imported(lambda: encoded(Image.new("L", (64, 64), 77), "PNG"), ".png", (64, 64), near((77,) * 3, 2)),
    "grey_alpha.png": Imported(lambda: encoded(halves("LA", (200, 255), (200, 0)), "PNG"), ".png", (64, 64),
                               left_right((200,) * 3, (0, 0, 0))),
    "rgba.png": Imported(lambda: encoded(halves("RGBA", (*RED, 255), (*BLUE, 0)), "PNG"), ".png", (64, 64),
                         left_right(RED, (0, 0, 0))),
    "palette.png": Imported(palette_with_transparency, ".png", (64, 64), left_right(RED, (0, 0, 0))),
    "one_pixel.png": Imported(lambda: encoded(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"), ".png", (1, 1),
                              near((10, 20, 30), 3)),
    "tall.png": Imported(lambda: encoded(Image.new("RGB", (1, 5000), (10, 20, 30)), "PNG"), ".png", (1, 5000),
                         near((10, 20, 30), 3)),
    "wide.jpg": Imported(lambda: encoded(Image.new("RGB", (5000, 1), (10, 20, 30)), "JPEG"), ".jpg", (5000, 1),
                         near((10, 20, 30), 6)),
    "frames.gif": Imported(two_frame_gif, ".gif", (32, 32), near(RED)),
    "png_named.jpg": Imported(real_png, ".png", (256, 256), not_flat),
    "jpeg_named.png": Imported(real_jpeg, ".jpg", (256, 256), not_flat),
}

REFUSED = {
    "cut.jpg": (lambda: real_jpeg()[:3000], "corrupt or truncated"),
    "cut.png": (lambda: real_png()[:5000], "corrupt or truncated"),
    "empty.jpg": (lambda: b"", "not an image"),
    "bomb.png": (lambda: png_header_only(100_000, 100_000), "not decoded"),
    "bomb.gif": (lambda: gif_header_only(65_535, 65_535), "not decoded"),
    "scan.tif": (lambda: encoded(Image.new("RGB", (8, 8)), "TIFF"), "TIFF images are not supported"),
    "sky.fits": (fits_image, "FITS images are not supported"),
}


def thumbnail_size(width: int, height: int, limit: int) -> tuple[int, int]:
    """The longest side at most ``limit``, the other scaled alike (never below one pixel), never upscaled."""
    scale = min(1.0, limit / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def folder_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("name", IMPORTED)
def test_an_odd_but_real_image_is_imported_with_an_rgb_thumbnail_of_sane_pixels(name, tmp_path, settings):
    case = IMPORTED[name]

    galaxies_import(dataset_name="edge", fmt="folder", path=folder_with(tmp_path, {name: case.make()}))

    galaxy = Galaxy.objects.get(external_id=Path(name).stem)
    assert (galaxy.width, galaxy.height) == case.size
    assert Path(galaxy.image.name).suffix == case.suffix
    with Image.open(galaxy.thumbnail.path) as thumbnail:
        assert (thumbnail.format, thumbnail.mode) == ("JPEG", "RGB")
        assert thumbnail.size == thumbnail_size(*case.size, settings.GALAXY_THUMBNAIL_SIZE)
        assert case.pixels(np.asarray(thumbnail)), np.asarray(thumbnail)[::8, ::8].tolist()


@pytest.mark.parametrize("name", REFUSED)
def test_an_image_that_cannot_be_shown_is_refused_naming_the_file_and_why(name, tmp_path, media_root):
    make, reason = REFUSED[name]
    folder = folder_with(tmp_path, {name: make(), "fine.jpg": real_jpeg()})
    before = snapshot(media_root)

    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="edge", fmt="folder", path=folder)

    assert len(failure.value.problems) == 1
    assert failure.value.problems[0].startswith(f"{name}: ") and reason in failure.value.problems[0]
    assert snapshot(media_root) == before


def test_the_thumbnail_page_serves_the_converted_thumbnail_to_a_signed_in_user_only(tmp_path, settings, expert):
    settings.GALAXY_SERVE_FILES = True
    galaxies_import(dataset_name="edge", fmt="folder",
                    path=folder_with(tmp_path, {"sixteen_bit.png": sixteen_bit_ramp()}))
    url = reverse("galaxy-thumbnail", kwargs={"galaxy_id": Galaxy.objects.get().pk})

    assert Client().get(url).status_code == 302 and "login" in Client().get(url)["Location"]
    client = Client()
    client.force_login(expert)
    redirect = client.get(url)
    assert redirect.status_code == 302
    served = client.get(redirect["Location"])
    assert served.status_code == 200
    with Image.open(io.BytesIO(b"".join(served.streaming_content))) as thumbnail:
        assert thumbnail.mode == "RGB" and spans_the_range(np.asarray(thumbnail))


def test_extraction_gives_finite_features_for_every_odd_image_and_names_the_one_broken_after_import(tmp_path):
    folder = folder_with(tmp_path, {name: case.make() for name, case in IMPORTED.items()
                                    if name not in ("png_named.jpg",)})  # same pixels as jpeg_named.png
    galaxies_import(dataset_name="edge", fmt="folder", path=folder)
    dataset = Galaxy.objects.first().dataset
    broken = Galaxy.objects.get(external_id="grey")
    Path(broken.image.path).write_bytes(b"")  # the disk lost it after the import

    feature_set = extracted(dataset)

    store = FeatureStore.open(feature_set.store_dir)
    stored = set(store.keys().tolist())
    assert stored == set(dataset.galaxies.exclude(pk=broken.pk).values_list("pk", flat=True))
    assert np.isfinite(np.asarray(store.vectors(), dtype=np.float32)).all()
    reason = FeatureSet.objects.get(pk=feature_set.pk).failed
    assert list(reason) == [str(broken.pk)]
    assert "empty file" in reason[str(broken.pk)] and broken.image.name in reason[str(broken.pk)]
