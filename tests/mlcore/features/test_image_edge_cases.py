"""Odd images on the model's side (mlcore/features/images.py), beyond the modes tests/mlcore/features/test_images.py
decodes: absurd sizes, several frames, headers claiming billions of pixels, truncated PNGs, and a batch that mixes them
with broken files. Every readable image becomes a finite model input; every unreadable one an error naming its file, in
its place in the batch, never a crashed or silently shortened batch."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mlcore.features.images import ImageFiles, load_rgb, make_loader, make_transform

GALAXY = Path(__file__).resolve().parents[3] / "labeling" / "demo_data" / "galaxy10" / "images" / "g10_class_5_0.jpg"


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def claiming(width: int, height: int) -> bytes:
    """A real small PNG whose header is rewritten to claim width x height pixels (a decompression bomb's header)."""
    data = bytearray(encoded(Image.new("RGB", (8, 8)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)  # IHDR's data starts at byte 16, its CRC at 29
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def two_frames() -> bytes:
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])


READABLE = {
    "tall.png": encoded(Image.new("RGB", (1, 5000), (10, 20, 30)), "PNG"),
    "wide.jpg": encoded(Image.new("RGB", (5000, 1), (10, 20, 30)), "JPEG"),
    "one_pixel.png": encoded(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"),
    "frames.gif": two_frames(),
    "palette.gif": encoded(Image.new("P", (40, 40), 3), "GIF", transparency=3),
    "cmyk.jpg": encoded(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG"),
}
UNREADABLE = {
    "bomb.png": claiming(100_000, 100_000),
    "cut.png": encoded(Image.open(GALAXY), "PNG")[:5000],
    "empty.jpg": b"",
    "text.jpg": b"ra,dec\n150.1,2.2\n",
}


@pytest.mark.parametrize("name", READABLE)
def test_an_absurdly_shaped_or_animated_image_becomes_a_finite_model_input(name):
    transform = make_transform(32)

    image = load_rgb(READABLE[name], min_size=transform.min_decode_size)
    tensor = transform(image)

    assert image.mode == "RGB" and tensor.shape == (3, 32, 32)
    assert torch.isfinite(tensor).all()


def test_only_the_first_frame_of_a_gif_is_the_galaxy():
    assert load_rgb(READABLE["frames.gif"]).getpixel((20, 20)) == (255, 0, 0)


def test_the_transparent_colour_of_a_gif_turns_black_sky():
    assert load_rgb(READABLE["palette.gif"]).getpixel((20, 20)) == (0, 0, 0)


@pytest.mark.parametrize("name", UNREADABLE)
def test_an_unreadable_image_is_refused_naming_the_file(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(UNREADABLE[name])

    with pytest.raises(ValueError, match=rf"^{path}: (not a readable image|empty file)"):
        load_rgb(path)


def test_a_batch_mixing_odd_and_broken_files_keeps_every_item_in_place(tmp_path):
    files = {**READABLE, **UNREADABLE}
    names = list(files)
    for name in names:
        (tmp_path / name).write_bytes(files[name])
    dataset = ImageFiles([tmp_path / name for name in names], list(range(len(names))), make_transform(32))

    batches = list(make_loader(dataset, batch_size=4))

    keys = np.concatenate([batch[1] for batch in batches])
    errors = [error for batch in batches for error in batch[2]]
    assert keys.tolist() == list(range(len(names)))
    assert all(torch.isfinite(batch[0]).all() for batch in batches)
    for name, error in zip(names, errors, strict=True):
        if name in READABLE:
            assert error == "", (name, error)
        else:
            assert error.startswith(str(tmp_path / name)), (name, error)
