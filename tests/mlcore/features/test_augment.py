"""Training augmentation and decoding once (mlcore/features/augment.py): D4 exactness, determinism, no black corners,
noise, decode_all's rows, failures and progress."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from mlcore.features.augment import TrainAugment, decode_all
from mlcore.features.images import d4_views, load_rgb, make_transform

SIZE = 32


def batch(count: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_a_turn_or_flip_alone_is_one_of_the_eight_d4_views_of_each_image():
    images = batch(16)
    turned = TrainAugment(SIZE, max_rotation=0.0, crop_scale=(1.0, 1.0), noise_std=0.0)(
        images, torch.Generator().manual_seed(3))

    for before, after in zip(images, turned, strict=True):
        assert torch.equal(before.flatten().sort().values, after.flatten().sort().values)  # same pixel multiset
        views = d4_views(before[None])
        assert any(torch.equal(view[0], after) for view in views)
    # Sixteen images cannot all have drawn the identity (probability 8**-16).
    assert not torch.equal(images, turned)


def test_the_same_generator_seed_gives_the_same_batch_and_another_seed_a_different_one():
    augment = TrainAugment(SIZE)
    images = batch()

    first = augment(images, torch.Generator().manual_seed(7))
    again = augment(images, torch.Generator().manual_seed(7))
    other = augment(images, torch.Generator().manual_seed(8))

    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_it_keeps_shape_and_dtype_and_leaves_the_input_alone():
    images = batch()
    kept = images.clone()

    out = TrainAugment(SIZE)(images, torch.Generator().manual_seed(0))

    assert out.shape == images.shape and out.dtype == torch.float32
    assert torch.equal(images, kept)


def test_rotation_and_crop_fill_corners_by_reflection_not_with_black():
    # A uniform image stays uniform under any rotation or crop only if the corners are filled from the image.
    flat = torch.full((4, 3, SIZE, SIZE), 1.5)

    out = TrainAugment(SIZE, max_rotation=45.0, crop_scale=(0.5, 0.5), noise_std=0.0)(
        flat, torch.Generator().manual_seed(1))

    assert torch.allclose(out, flat, atol=1e-5)


def test_rotation_and_crop_move_pixels():
    images = batch()

    out = TrainAugment(SIZE, d4=False, max_rotation=15.0, crop_scale=(0.85, 0.85), noise_std=0.0)(
        images, torch.Generator().manual_seed(2))

    assert (out - images).abs().mean() > 0.1


def test_noise_has_the_asked_standard_deviation_in_normalised_units():
    images = batch(8)

    out = TrainAugment(SIZE, d4=False, max_rotation=0.0, crop_scale=(1.0, 1.0), noise_std=0.1)(
        images, torch.Generator().manual_seed(4))

    assert float((out - images).std()) == pytest.approx(0.1, rel=0.05)


def test_it_pickles_like_the_image_transform():
    augment = pickle.loads(pickle.dumps(TrainAugment(SIZE, max_rotation=5.0)))

    assert augment.max_rotation == 5.0
    assert augment(batch(2), torch.Generator()).shape == (2, 3, SIZE, SIZE)


@pytest.mark.parametrize("shape", [(2, 3, SIZE + 1, SIZE + 1), (2, 1, SIZE, SIZE), (3, SIZE, SIZE)])
def test_it_rejects_a_batch_of_another_shape_naming_it(shape):
    with pytest.raises(ValueError, match=str(shape[-1])):
        TrainAugment(SIZE)(torch.zeros(shape), torch.Generator())


@pytest.mark.parametrize("kwargs", [{"crop_scale": (0.0, 1.0)}, {"crop_scale": (0.9, 0.8)},
                                    {"crop_scale": (0.9, 1.2)}, {"max_rotation": -1.0}, {"noise_std": -0.1}])
def test_it_refuses_settings_out_of_range(kwargs):
    with pytest.raises(ValueError):
        TrainAugment(SIZE, **kwargs)


def test_decode_all_gives_the_transforms_rows_and_names_unreadable_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for index in range(3):
        path = tmp_path / f"galaxy{index}.png"
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    paths.insert(1, broken)
    calls = []

    images, failures = decode_all(paths, SIZE, crop_fraction=0.9, progress=lambda done, total: calls.append(
        (done, total)))

    assert images.shape == (4, 3, SIZE, SIZE) and images.dtype == torch.float32
    transform = make_transform(SIZE, 0.9)
    for row, path in ((0, paths[0]), (2, paths[2]), (3, paths[3])):
        assert torch.equal(images[row], transform(load_rgb(path)))
    assert [index for index, _ in failures] == [1]
    assert "broken.jpg" in failures[0][1]
    assert torch.count_nonzero(images[1]) == 0
    assert calls[-1] == (4, 4)


def test_decode_all_of_nothing_is_an_empty_batch():
    images, failures = decode_all([], SIZE)

    assert images.shape == (0, 3, SIZE, SIZE) and failures == []
