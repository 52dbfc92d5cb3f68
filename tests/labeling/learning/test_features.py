"""Feature extraction as a job, on real Galaxy10 images: every galaxy with an image gets a vector, runs are
incremental and resume after a stop, unreadable images are listed, and checkpoints load like random weights."""

import numpy as np
import pytest
import torch

from labeling import tasks
from labeling.models import FeatureSet, Galaxy, Job, ModelVersion
from labeling.services.jobs.lifecycle import JobReporter
from labeling.services.learning.jobs import extraction_start
from labeling.services.learning.model_versions import ModelVersionError, model_version_get_or_create
from mlcore.features.backbone import build_backbone, save_backbone
from mlcore.features.store import FeatureStore
from tests.labeling.ml_helpers import extracted, galaxy10_subset, tiny_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset(tmp_path / "import")


def _vectors(feature_set: FeatureSet) -> dict[int, np.ndarray]:
    store = FeatureStore.open(feature_set.store_dir)
    return dict(zip(store.keys().tolist(), store.get(store.keys()), strict=True))


def test_every_galaxy_with_an_image_gets_a_vector_and_a_second_run_adds_none(dataset):
    Galaxy.objects.create(dataset=dataset, external_id="catalogue-only")  # no image: nothing to extract
    feature_set = extracted(dataset)

    assert feature_set.count == 18 and feature_set.dims == 512 and feature_set.failed == {}
    vectors = _vectors(feature_set)
    assert set(vectors) == set(dataset.galaxies.exclude(image="").values_list("pk", flat=True))
    assert all(v.shape == (512,) and np.isfinite(v).all() for v in vectors.values())

    again = extraction_start(dataset=dataset, model_version=tiny_model(), enqueue=False)
    assert tasks.extract_features(again.pk)["added"] == 0
    assert _vectors(FeatureSet.objects.get(pk=feature_set.pk)).keys() == vectors.keys()


def test_the_same_seed_gives_the_same_vectors_and_another_seed_other_ones(dataset, tmp_path):
    first = _vectors(extracted(dataset))
    other = _vectors(extracted(dataset, tiny_model(seed=1)))
    FeatureSet.objects.all().delete()
    ModelVersion.objects.all().delete()
    again = _vectors(extracted(dataset))
    key = next(iter(first))
    assert np.array_equal(first[key], again[key])
    assert not np.allclose(first[key], other[key])


def test_a_stopped_extraction_keeps_its_vectors_and_the_next_run_adds_only_the_rest(dataset, monkeypatch):
    checks = iter([False, True])  # extract() asks between batches: let one batch through, then stop
    monkeypatch.setattr(JobReporter, "cancel_requested", lambda self: next(checks, True))
    job = extraction_start(dataset=dataset, model_version=tiny_model(), enqueue=False, batch_size=8)

    assert tasks.extract_features(job.pk) == {"status": "cancelled"}
    feature_set = FeatureSet.objects.get()
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED
    assert 0 < feature_set.count < 18 and len(FeatureStore.open(feature_set.store_dir)) == feature_set.count

    monkeypatch.undo()
    resumed = extraction_start(dataset=dataset, model_version=tiny_model(), enqueue=False, batch_size=8)
    result = tasks.extract_features(resumed.pk)
    assert result["added"] == 18 - feature_set.count and result["count"] == 18


def test_an_unreadable_image_is_listed_with_its_reason_and_the_others_are_extracted(dataset):
    broken = dataset.galaxies.order_by("pk").first()
    with open(broken.image.path, "r+b") as handle:
        handle.truncate(300)  # a JPEG cut off after its header

    feature_set = extracted(dataset)

    assert feature_set.count == 17
    assert list(feature_set.failed) == [str(broken.pk)]
    assert broken.image.name.rsplit("/", 1)[-1] in feature_set.failed[str(broken.pk)]


def test_a_saved_checkpoint_extracts_exactly_what_the_model_it_was_saved_from_does(dataset, tmp_path):
    random_features = _vectors(extracted(dataset))
    checkpoint = tmp_path / "backbone.pt"
    save_backbone(build_backbone("resnet18", "random", seed=0), checkpoint, name="resnet18", image_size=32)

    version = model_version_get_or_create(backbone="resnet18", weights=str(checkpoint))

    assert version.weights == ModelVersion.Weights.FILE and version.image_size == 32  # taken from the checkpoint
    from_file = _vectors(extracted(dataset, version))
    key = next(iter(random_features))
    assert np.allclose(random_features[key], from_file[key], atol=1e-2)  # float16 store


def test_galaxy_weights_are_the_default_and_see_the_central_half_of_each_cutout(dataset):
    from mlcore.features.backbone import GALAXY_WEIGHTS, input_crop
    from mlcore.features.images import ImageFiles, make_transform

    version = model_version_get_or_create()

    assert version.weights == ModelVersion.Weights.FILE and version.checkpoint == str(GALAXY_WEIGHTS)
    assert version.image_size == 64 and "galaxy backbone" in version.name
    assert model_version_get_or_create(weights="galaxy").pk == version.pk
    stored = _vectors(extracted(dataset, version))
    galaxy = dataset.galaxies.order_by("pk").first()
    model = build_backbone("resnet18", "galaxy")
    path = galaxy.image.path

    def direct(crop):
        image = ImageFiles([path], [0], make_transform(64, crop))[0][0]
        with torch.inference_mode():
            return model(image[None]).numpy()[0]

    assert input_crop("galaxy") == 0.5
    assert np.allclose(stored[galaxy.pk], direct(0.5), atol=2e-2)
    assert not np.allclose(stored[galaxy.pk], direct(1.0), atol=2e-2)


def test_galaxy_weights_for_another_backbone_are_refused():
    with pytest.raises(ModelVersionError, match="galaxy weights are a resnet18"):
        model_version_get_or_create(backbone="resnet50")
    assert not ModelVersion.objects.exists()


def test_a_plain_torchvision_state_dict_is_accepted_as_weights(dataset, tmp_path):
    path = tmp_path / "resnet18-plain.pth"
    torch.save(build_backbone("resnet18", "random", seed=0).state_dict(), path)
    version = model_version_get_or_create(weights=str(path), image_size=32)
    assert version.weights == ModelVersion.Weights.FILE and version.image_size == 32
    assert extracted(dataset, version).count == 18


def test_a_replaced_checkpoint_file_is_a_new_model_version(tmp_path):
    checkpoint = tmp_path / "backbone.pt"
    save_backbone(build_backbone("resnet18", "random", seed=0), checkpoint, name="resnet18", image_size=32)
    first = model_version_get_or_create(weights=str(checkpoint))
    save_backbone(build_backbone("resnet18", "random", seed=1), checkpoint, name="resnet18", image_size=32)
    second = model_version_get_or_create(weights=str(checkpoint))
    assert first.pk != second.pk and first.checkpoint_sha256 != second.checkpoint_sha256
    assert model_version_get_or_create(weights=str(checkpoint)).pk == second.pk


@pytest.mark.parametrize("weights, message", [
    ("/no/such/weights.pt", "does not exist"),
    ("corrupt", "backbone.pt"),
])
def test_a_missing_or_corrupt_weights_file_is_refused_before_any_job(weights, message, tmp_path):
    if weights == "corrupt":
        weights = tmp_path / "backbone.pt"
        weights.write_bytes(b"\x80\x02 not a checkpoint")
    with pytest.raises(ModelVersionError, match=message):
        model_version_get_or_create(weights=str(weights))
    assert not ModelVersion.objects.exists()


def test_a_checkpoint_of_another_backbone_is_refused(tmp_path):
    checkpoint = tmp_path / "backbone.pt"
    save_backbone(build_backbone("resnet18", "random", seed=0), checkpoint, name="resnet18", image_size=64)
    with pytest.raises(ModelVersionError, match="resnet18"):
        model_version_get_or_create(backbone="resnet50", weights=str(checkpoint))


def test_an_image_size_outside_32_to_424_is_refused():
    with pytest.raises(ModelVersionError, match="outside 32-424"):
        model_version_get_or_create(image_size=16)


def test_the_task_sets_the_worker_threads_from_the_settings(dataset, settings):
    settings.TORCH_THREADS = 1
    extracted(dataset)
    assert torch.get_num_threads() == 1
