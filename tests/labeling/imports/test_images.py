import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from labeling.services.imports.images import (
    ImageRejected,
    image_check,
    image_inspect,
    png_from_array,
    thumbnail_jpeg,
)
from tests.labeling.import_helpers import png_header_only

LIMIT = 25_000_000


@pytest.fixture
def galaxy_jpeg(demo_data):
    return demo_data / "galaxy10" / "images" / "g10_class_5_0.jpg"


def test_it_reads_size_format_and_hash_of_a_real_galaxy(galaxy_jpeg):
    info = image_inspect(galaxy_jpeg, max_pixels=LIMIT)
    assert (info.width, info.height, info.format, info.suffix) == (256, 256, "JPEG", ".jpg")
    assert info.content_hash == hashlib.sha256(galaxy_jpeg.read_bytes()).hexdigest()


def test_it_rejects_a_truncated_jpeg(galaxy_jpeg, tmp_path):
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(galaxy_jpeg.read_bytes()[:3000])
    with pytest.raises(ImageRejected, match="truncated"):
        image_check(cut, max_pixels=LIMIT)


def test_it_rejects_bytes_that_are_not_an_image(tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_text("this is a text file with a .png name")
    with pytest.raises(ImageRejected, match="not an image"):
        image_check(fake, max_pixels=LIMIT)


def test_it_refuses_a_header_claiming_too_many_pixels_without_decoding_it():
    # 9000 x 9000 is under Pillow's own bomb limit, so only our check stands between it and a 243 MB decode;
    # had the pixels been decoded the message would say "truncated" instead.
    bomb = io.BytesIO(png_header_only(9000, 9000))
    with pytest.raises(ImageRejected, match=r"81,000,000 pixels is over the limit of 25,000,000.*not decoded"):
        image_check(bomb, max_pixels=LIMIT)


def test_it_refuses_a_header_far_beyond_pillows_own_limit():
    with pytest.raises(ImageRejected, match="too many pixels"):
        image_check(io.BytesIO(png_header_only(100_000, 100_000)), max_pixels=LIMIT)


def test_a_real_image_over_a_low_limit_is_refused(galaxy_jpeg):
    with pytest.raises(ImageRejected, match="65,536 pixels is over the limit of 1,000"):
        image_check(galaxy_jpeg, max_pixels=1000)


def test_it_refuses_formats_a_browser_cannot_show(tmp_path):
    path = tmp_path / "galaxy.tiff"
    Image.new("RGB", (8, 8)).save(path, format="TIFF")
    with pytest.raises(ImageRejected, match="TIFF images are not supported"):
        image_check(path, max_pixels=LIMIT)


def test_the_thumbnail_is_an_rgb_jpeg_whose_longest_side_is_the_size():
    wide = io.BytesIO()
    Image.new("RGBA", (300, 150), (10, 20, 30, 128)).save(wide, format="PNG")
    with Image.open(io.BytesIO(thumbnail_jpeg(wide.getvalue(), size=64))) as thumbnail:
        assert (thumbnail.format, thumbnail.mode, thumbnail.size) == ("JPEG", "RGB", (64, 32))


def test_a_thumbnail_never_upscales_a_small_image():
    small = io.BytesIO()
    Image.new("L", (40, 20)).save(small, format="PNG")
    with Image.open(io.BytesIO(thumbnail_jpeg(small.getvalue(), size=128))) as thumbnail:
        assert (thumbnail.mode, thumbnail.size) == ("RGB", (40, 20))


def test_png_from_array_is_lossless_and_deterministic():
    pixels = np.random.default_rng(0).integers(0, 256, size=(32, 48, 3), dtype=np.uint8)
    data = png_from_array(pixels)
    assert data == png_from_array(pixels.copy())
    with Image.open(io.BytesIO(data)) as image:
        assert np.array_equal(np.asarray(image), pixels)


def test_png_from_array_rejects_a_wrong_shape_naming_it():
    with pytest.raises(ValueError, match=r"\(32, 32\)"):
        png_from_array(np.zeros((32, 32), dtype=np.uint8))
