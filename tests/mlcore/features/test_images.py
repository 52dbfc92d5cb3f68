"""Image decoding, transform, D4 views and the loader (mlcore/features/images.py), on real galaxies and odd files."""

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from mlcore.features.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFiles,
    d4_views,
    load_rgb,
    make_loader,
    make_transform,
)

GALAXIES = sorted((Path(__file__).resolve().parents[3] / "labeling" / "demo_data" / "galaxy10" / "images")
                  .glob("*.jpg"))


def saved(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def pixel(image: Image.Image, xy=(0, 0)) -> tuple[int, int, int]:
    return image.getpixel(xy)


def test_a_real_galaxy_jpeg_decodes_to_rgb():
    image = load_rgb(GALAXIES[0])

    assert (image.mode, image.size) == ("RGB", (256, 256))


def test_the_files_bytes_decode_like_the_file():
    assert np.array_equal(np.asarray(load_rgb(GALAXIES[0].read_bytes())), np.asarray(load_rgb(GALAXIES[0])))


def test_greyscale_is_copied_to_three_equal_channels(tmp_path):
    path = saved(Image.new("L", (8, 8), 77), tmp_path / "grey.png")

    image = load_rgb(path)

    assert image.mode == "RGB" and pixel(image) == (77, 77, 77)


@pytest.mark.parametrize("mode, colour, expected", [
    ("RGBA", (200, 100, 50, 255), (200, 100, 50)),
    ("RGBA", (200, 100, 50, 128), (100, 50, 25)),
    ("RGBA", (200, 100, 50, 0), (0, 0, 0)),
    ("LA", (200, 0), (0, 0, 0)),
    ("LA", (200, 255), (200, 200, 200)),
])
def test_transparency_is_composited_on_black_sky(tmp_path, mode, colour, expected):
    path = saved(Image.new(mode, (4, 4), colour), tmp_path / "alpha.png")

    image = load_rgb(path)

    assert image.mode == "RGB"
    assert np.allclose(pixel(image), expected, atol=1)


def test_a_palette_image_keeps_its_colours_and_its_transparent_index_turns_black(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    opaque = saved(palette, tmp_path / "opaque.png")
    see_through = saved(palette, tmp_path / "transparent.png", transparency=1)

    assert [pixel(load_rgb(opaque), (x, 0)) for x in (0, 1)] == [(255, 0, 0), (0, 0, 255)]
    assert [pixel(load_rgb(see_through), (x, 0)) for x in (0, 1)] == [(255, 0, 0), (0, 0, 0)]


@pytest.mark.parametrize("mode, fmt", [("I;16", "PNG"), ("I;16B", "TIFF"), ("I", "TIFF")])
def test_sixteen_bit_images_are_scaled_to_eight_bits_by_their_own_range(tmp_path, mode, fmt):
    values = np.linspace(1000, 3000, 64).reshape(8, 8)
    dtype = {"I;16": "<u2", "I;16B": ">u2", "I": "<i4"}[mode]
    source = Image.frombytes(mode, (8, 8), values.astype(dtype).tobytes())
    path = saved(source, tmp_path / f"deep.{fmt.lower()}")
    assert Image.open(path).mode == mode

    image = np.asarray(load_rgb(path))

    assert image.dtype == np.uint8 and image.shape == (8, 8, 3)
    assert (image.min(), image.max()) == (0, 255)
    assert np.all(np.diff(image[..., 0].ravel().astype(int)) >= 0)  # order kept


def test_a_flat_sixteen_bit_image_becomes_black_rather_than_dividing_by_zero(tmp_path):
    path = saved(Image.new("I;16", (4, 4), 500), tmp_path / "flat.png")

    assert pixel(load_rgb(path)) == (0, 0, 0)


def test_a_cmyk_jpeg_decodes_to_rgb(tmp_path):
    path = saved(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "cmyk.jpg")

    image = load_rgb(path)

    assert image.mode == "RGB"
    red, green, blue = pixel(image, (8, 8))
    assert red > 200 and green < 60 and blue < 60


def test_a_truncated_jpeg_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(GALAXIES[0].read_bytes()[:3000])

    with pytest.raises(ValueError, match=r"cut\.jpg: not a readable image"):
        load_rgb(path)


def test_a_zero_byte_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")

    with pytest.raises(ValueError, match=r"empty\.jpg: empty file"):
        load_rgb(path)


def test_a_file_that_is_not_an_image_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("ra,dec\n150.1,2.2\n")

    with pytest.raises(ValueError, match=r"notes\.jpg: not a readable image"):
        load_rgb(path)


def test_a_missing_file_is_an_os_error_not_a_decoding_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_rgb(tmp_path / "gone.jpg")


@pytest.mark.parametrize("min_size, expected", [(None, 256), (200, 256), (128, 128), (100, 128), (64, 64), (33, 64)])
def test_a_jpeg_is_decoded_smaller_only_while_it_stays_at_least_min_size(min_size, expected):
    assert load_rgb(GALAXIES[0], min_size=min_size).size == (expected, expected)


def test_draft_decoding_gives_nearly_the_same_model_input():
    transform = make_transform(64)

    quick = transform(load_rgb(GALAXIES[1], min_size=transform.min_decode_size))
    full = transform(load_rgb(GALAXIES[1]))

    assert transform.min_decode_size == 64
    assert (quick - full).abs().mean() < 0.05  # normalised units; one grey level is ~0.017


@pytest.mark.parametrize("size", [32, 64, 424])
def test_the_transform_gives_a_float32_square_of_the_asked_size(size):
    image = Image.new("RGB", (90, 60), (10, 20, 30))

    tensor = make_transform(size)(image)

    assert tensor.shape == (3, size, size) and tensor.dtype == torch.float32


def test_the_transform_normalises_with_imagenet_statistics():
    grey_of_mean = tuple(round(255 * m) for m in IMAGENET_MEAN)

    tensor = make_transform(32)(Image.new("RGB", (40, 40), grey_of_mean))

    assert tensor.abs().max() < 0.01


def test_the_transform_matches_torchvisions_to_tensor_and_normalize_on_the_resized_image():
    image = load_rgb(GALAXIES[5])

    tensor = make_transform(64)(image)

    resized = image.resize((64, 64), Image.Resampling.BILINEAR)
    expected = TF.normalize(TF.to_tensor(resized), IMAGENET_MEAN, IMAGENET_STD)
    assert torch.allclose(tensor, expected, atol=1e-5)


def test_the_transform_keeps_the_centre_when_it_crops():
    image = Image.new("RGB", (100, 80), (0, 0, 0))
    image.paste((255, 255, 255), (30, 20, 70, 60))  # a 40 x 40 white square in the middle

    whole = make_transform(32)(image)
    centre = make_transform(32, crop_fraction=0.5)(image)

    white = ((1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)).view(3, 1, 1)
    assert torch.allclose(centre[:, 2:-2, 2:-2], white, atol=1e-5)  # the resampling filter reaches past the box
    assert whole[0, 0, 0] < whole[0, 16, 16]
    assert make_transform(64, 0.5).min_decode_size == 128


@pytest.mark.parametrize("size", [31, 425, 64.0, True, "64"])
def test_the_transform_refuses_a_bad_image_size(size):
    with pytest.raises(ValueError, match="image_size must be an int in 32..424"):
        make_transform(size)


@pytest.mark.parametrize("fraction", [0, 0.0, -0.5, 1.01, float("nan")])
def test_the_transform_refuses_a_bad_crop_fraction(fraction):
    with pytest.raises(ValueError, match=r"crop_fraction must be in \(0, 1\]"):
        make_transform(64, fraction)


def test_the_transform_survives_pickling_for_loader_workers():
    transform = make_transform(48, 0.75)
    image = load_rgb(GALAXIES[0])

    assert torch.equal(pickle.loads(pickle.dumps(transform))(image), transform(image))


def test_d4_views_are_the_eight_quarter_turns_and_flips_identity_first():
    batch = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)

    views = d4_views(batch)

    assert len(views) == 8 and torch.equal(views[0], batch)
    assert len({tuple(view.flatten().tolist()) for view in views}) == 8
    assert torch.equal(views[3], torch.rot90(batch, 1, dims=(-2, -1)).flip(-1))


def test_d4_views_refuse_non_square_images():
    with pytest.raises(ValueError, match=r"square images, got shape \(2, 3, 4, 5\)"):
        d4_views(torch.zeros(2, 3, 4, 5))


def test_a_bad_file_among_image_files_gives_zeros_and_a_message_naming_it(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really")
    files = ImageFiles([GALAXIES[0], broken, tmp_path / "gone.jpg"], [10, 11, 12], make_transform(32))

    good, bad, gone = files[0], files[1], files[2]

    assert good[1:] == (10, "") and good[0].abs().sum() > 0
    assert bad[1] == 11 and str(broken) in bad[2] and torch.equal(bad[0], torch.zeros(3, 32, 32))
    assert gone[1] == 12 and "gone.jpg" in gone[2]


def test_image_files_refuse_paths_and_keys_of_different_lengths():
    with pytest.raises(ValueError, match="2 paths but 1 keys"):
        ImageFiles(GALAXIES[:2], [1], make_transform(32))


def test_the_loader_batches_in_order_with_int64_keys_and_one_error_per_image(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    paths = [*GALAXIES[:4], broken]
    loader = make_loader(ImageFiles(paths, [5, 4, 3, 2, 1], make_transform(32)), batch_size=3)

    batches = list(loader)

    assert [tuple(images.shape) for images, _, _ in batches] == [(3, 3, 32, 32), (2, 3, 32, 32)]
    assert [keys.tolist() for _, keys, _ in batches] == [[5, 4, 3], [2, 1]]
    assert all(keys.dtype == np.int64 for _, keys, _ in batches)
    assert all(images.is_contiguous(memory_format=torch.channels_last) for images, _, _ in batches)
    assert batches[0][2] == ["", "", ""] and batches[1][2][0] == "" and "broken.png" in batches[1][2][1]


def test_a_loader_with_a_worker_process_gives_the_same_batches_as_without():
    files = ImageFiles(GALAXIES[:5], range(5), make_transform(32))

    inline = list(make_loader(files, batch_size=2))
    with_worker = list(make_loader(files, batch_size=2, num_workers=1))

    assert len(inline) == len(with_worker) == 3
    for (images, keys, errors), (images_w, keys_w, errors_w) in zip(inline, with_worker, strict=True):
        assert torch.equal(images, images_w) and np.array_equal(keys, keys_w) and errors == errors_w


def test_the_loader_refuses_a_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        make_loader(ImageFiles([], [], make_transform(32)), batch_size=0)


def test_bytes_that_are_not_an_image_are_refused():
    with pytest.raises(ValueError, match="<bytes>: not a readable image"):
        load_rgb(io.BytesIO(b"GIF89a").getvalue())
