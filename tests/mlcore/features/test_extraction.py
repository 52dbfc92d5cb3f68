"""Batched feature extraction (mlcore/features/extraction.py): batches, failures, D4 invariance, progress,
cancelling."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mlcore.features.backbone import build_backbone
from mlcore.features.extraction import Cancelled, FeatureBatch, extract, pick_device
from mlcore.features.images import ImageFiles, load_rgb, make_loader, make_transform

GALAXIES = sorted((Path(__file__).resolve().parents[3] / "labeling" / "demo_data" / "galaxy10" / "images")
                  .glob("*.jpg"))
SIZE = 48


class Tensors(torch.utils.data.Dataset):
    """Ready-made model inputs as (tensor, key, "") items, for tests that act on tensors directly."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], 100 + index, ""


@pytest.fixture(scope="module")
def model():
    return build_backbone("resnet18", seed=0)


def loader_over(paths, batch_size=4, keys=None):
    keys = range(len(paths)) if keys is None else keys
    return make_loader(ImageFiles(paths, keys, make_transform(SIZE)), batch_size=batch_size)


def all_of(batches: list[FeatureBatch]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([b.keys for b in batches]), np.concatenate([b.vectors for b in batches])


def saved(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_it_yields_one_batch_per_loader_batch_with_raw_float32_vectors(model):
    batches = list(extract(model, loader_over(GALAXIES[:6], keys=[60, 50, 40, 30, 20, 10]), device="cpu"))

    assert [len(b.keys) for b in batches] == [4, 2]
    keys, vectors = all_of(batches)
    assert keys.tolist() == [60, 50, 40, 30, 20, 10] and keys.dtype == np.int64
    assert vectors.shape == (6, 512) and vectors.dtype == np.float32
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert all(b.failed == [] for b in batches)


def test_the_features_are_the_models_output_for_the_transformed_image(model):
    transform = make_transform(SIZE)

    (batch,) = extract(model, loader_over(GALAXIES[:1]), device="cpu")

    with torch.inference_mode():
        expected = model(transform(load_rgb(GALAXIES[0], min_size=SIZE))[None]).numpy()
    assert np.allclose(batch.vectors, expected, rtol=1e-4, atol=1e-5)


def test_a_bad_file_in_a_batch_is_reported_and_the_others_still_come_out(model, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(GALAXIES[2].read_bytes()[:500])
    paths = [GALAXIES[0], GALAXIES[1], broken, GALAXIES[3]]

    (batch,) = extract(model, loader_over(paths, keys=[1, 2, 3, 4]), device="cpu")
    (clean,) = extract(model, loader_over([GALAXIES[0], GALAXIES[1], GALAXIES[3]], keys=[1, 2, 4]), device="cpu")

    assert batch.keys.tolist() == [1, 2, 4] and batch.vectors.shape == (3, 512)
    assert [key for key, _ in batch.failed] == [3] and "broken.jpg" in batch.failed[0][1]
    assert np.allclose(batch.vectors, clean.vectors, rtol=1e-4, atol=1e-5)


def test_d4_features_are_invariant_to_quarter_turns_and_flips_of_the_input(model):
    image = make_transform(SIZE)(load_rgb(GALAXIES[3]))
    moved = [image, torch.rot90(image, 1, dims=(1, 2)), torch.rot90(image, 2, dims=(1, 2)), image.flip(2),
             torch.rot90(image, 1, dims=(1, 2)).flip(1)]
    loader = make_loader(Tensors(torch.stack(moved)), batch_size=8)

    (plain,) = extract(model, loader, device="cpu")
    (averaged,) = extract(model, loader, device="cpu", d4=True)

    for other in range(1, len(moved)):
        assert relative(averaged.vectors[other], averaged.vectors[0]) < 1e-5
        assert relative(plain.vectors[other], plain.vectors[0]) > 1e-2  # so the check above can fail


def test_d4_features_of_a_rotated_or_mirrored_image_file_match_the_originals(model, tmp_path):
    original = load_rgb(GALAXIES[3])
    paths = [saved(original, tmp_path / "original.png")]
    for turn in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.FLIP_TOP_BOTTOM):
        paths.append(saved(original.transpose(turn), tmp_path / f"{turn.name}.png"))

    (plain,) = extract(model, loader_over(paths), device="cpu")
    (averaged,) = extract(model, loader_over(paths), device="cpu", d4=True)

    # Lossless files, but the resize rounds to 8 bits along rows then columns, so a turned file is not exactly a
    # turned tensor: a looser tolerance than above, still far below what the turn changes without D4.
    for other in range(1, len(paths)):
        assert relative(averaged.vectors[other], averaged.vectors[0]) < 5e-3
        assert relative(plain.vectors[other], plain.vectors[0]) > 2e-2


def test_progress_is_reported_after_each_batch_counting_failures_too(model, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    calls = []

    list(extract(model, loader_over([*GALAXIES[:4], empty, *GALAXIES[4:9]]), device="cpu",
                 progress=lambda done, total: calls.append((done, total))))

    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_should_stop_cancels_between_batches_after_yielding_the_finished_ones(model):
    checks = []

    def stop_on_second_check():
        checks.append(True)
        return len(checks) >= 2

    extraction = extract(model, loader_over(GALAXIES[:12]), device="cpu", should_stop=stop_on_second_check)
    first = next(extraction)

    with pytest.raises(Cancelled, match="stopped after 4 images"):
        next(extraction)
    assert len(first.keys) == 4


def test_an_empty_loader_yields_nothing_and_reports_no_progress(model):
    calls = []

    batches = list(extract(model, loader_over([]), device="cpu", progress=lambda *args: calls.append(args)))

    assert batches == [] and calls == []


def test_inference_mode_does_not_leak_into_the_callers_code_between_batches(model):
    for _ in extract(model, loader_over(GALAXIES[:2], batch_size=1), device="cpu"):
        assert not torch.is_inference_mode_enabled()


def test_a_model_that_does_not_pool_its_output_is_refused(model):
    unpooled = torch.nn.Conv2d(3, 4, 3)

    with pytest.raises(ValueError, match=r"model output has shape \(2, 4, 46, 46\), expected \(2, d\)"):
        list(extract(unpooled, loader_over(GALAXIES[:2]), device="cpu"))


def test_a_batch_that_is_not_images_keys_errors_is_refused(model):
    with pytest.raises(ValueError, match=r"images must be a \(B, 3, H, W\) tensor, got \(2, 48, 48\)"):
        list(extract(model, [(torch.zeros(2, SIZE, SIZE), np.arange(2), ["", ""])], device="cpu"))


def test_pick_device_follows_the_preference_and_what_is_available():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device preference 'tpu'"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_pick_device_refuses_cuda_where_there_is_none():
    with pytest.raises(ValueError, match="'cuda' asked for, but CUDA is not available"):
        pick_device("cuda")
