"""The command-line contract of extract_features, build_index, cluster and embed_2d: a one-line summary at the
end, a non-zero exit with a clear message on failure, and the same Job rows the Jobs page shows."""

import re
import time

import pytest
import torch
from django.core.management import CommandError, call_command

from labeling.models import Clustering, Embedding, FeatureSet, Job
from mlcore.features.backbone import build_backbone, save_backbone
from tests.labeling.ml_helpers import galaxy10_subset

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset(tmp_path / "import")


def _call(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_extract_then_index_then_cluster_then_map_from_the_command_line(dataset):
    summary = _call("extract_features", "--dataset", dataset.name, "--weights", "random", "--image-size", "32",
                    "--threads", "1")
    assert summary.startswith(f"{dataset.name}: 18 galaxies have resnet18 · random seed 0 · 32 px features (18 new")
    feature_set = FeatureSet.objects.get()
    assert f"feature set #{feature_set.pk}" in summary

    summary = _call("build_index", "--dataset", dataset.name)
    assert "exact index of 18 vectors, recall@20 1.000" in summary

    summary = _call("cluster", "--dataset", dataset.name, "--method", "kmeans", "--k", "3")
    clustering = Clustering.objects.get()
    assert summary.startswith(f"clustering #{clustering.pk}: k-means of 18 galaxies into 3 clusters")
    assert "expert: Galaxy10 DECaLS ARI" in summary

    summary = _call("embed_2d", "--dataset", dataset.name, "--method", "lda", "--schema", "galaxy10")
    assert Embedding.objects.get().points.count() == 18 and "lda of 18 galaxies" in summary

    assert list(Job.objects.order_by("pk").values_list("kind", "status", "created_by")) == [
        ("extract_features", "succeeded", None), ("build_index", "succeeded", None), ("cluster", "succeeded", None),
        ("embed_2d", "succeeded", None)]


def test_a_checkpoint_file_works_like_random_weights(dataset, tmp_path):
    path = tmp_path / "galaxy-backbone.pt"
    save_backbone(build_backbone("resnet18", "random", seed=3), path, name="resnet18", image_size=40)
    summary = _call("extract_features", "--dataset", dataset.name, "--weights", str(path))
    assert "resnet18 · galaxy-backbone.pt" in summary and "· 40 px features (18 new" in summary


def test_the_galaxy_backbone_is_the_default_at_its_own_size(dataset):
    summary = _call("extract_features", "--dataset", dataset.name, "--threads", "1")

    assert re.search(r"18 galaxies have resnet18 · galaxy backbone [0-9a-f]{8} · 64 px features \(18 new", summary)


def test_pretrain_on_folders_writes_the_galaxy_recipe_and_its_manifest(tmp_path):
    from mlcore.features.backbone import read_checkpoint
    from tests.labeling.ml_helpers import galaxy10_subset_folder

    folder = galaxy10_subset_folder(tmp_path / "images")
    output = tmp_path / "out" / "backbone.pt"
    summary = _call("pretrain", "--folder", str(folder / "images"), "--output", str(output), "--epochs", "1",
                    "--image-size", "32", "--device", "cpu")

    assert summary.startswith("18 images from 1 folders") and f"wrote {output}" in summary
    assert read_checkpoint(output)["extra"]["method"] == "simclr+targets"
    assert len((tmp_path / "out" / "backbone.images.csv").read_text().splitlines()) == 19
    with pytest.raises(CommandError, match="--output goes with --folder"):
        _call("pretrain", "--output", str(output))
    with pytest.raises(CommandError, match="no --dataset"):
        _call("pretrain", "--folder", str(folder), "--output", str(output), "--dataset", "x")


@pytest.mark.parametrize("arguments, message", [
    (["--dataset", "Nowhere"], "no dataset 'Nowhere' (datasets: 'Galaxy10 subset')"),
    (["--weights", "/no/such/file.pt"], "does not exist"),
    (["--image-size", "1000"], "outside 32-424"),
])
def test_extract_features_fails_clearly_on_bad_arguments(dataset, arguments, message):
    arguments = arguments if "--dataset" in arguments else ["--dataset", dataset.name, *arguments]
    with pytest.raises(CommandError, match=re.escape(message)):
        _call("extract_features", *arguments)
    assert not Job.objects.exists()


def test_a_corrupt_checkpoint_fails_naming_the_file(dataset, tmp_path):
    path = tmp_path / "damaged.pt"
    save_backbone(build_backbone("resnet18", "random"), path, name="resnet18", image_size=32)
    path.write_bytes(path.read_bytes()[:5000])  # cut short, as by a full disk
    with pytest.raises(CommandError, match="damaged.pt"):
        _call("extract_features", "--dataset", dataset.name, "--weights", str(path))


def test_imagenet_weights_offline_fail_within_seconds_saying_how_to_supply_a_file(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    started = time.monotonic()
    with pytest.raises(CommandError) as failure:
        _call("extract_features", "--dataset", dataset.name, "--weights", "imagenet", "--image-size", "32")
    assert time.monotonic() - started < 30
    message = str(failure.value)
    assert "resnet18-f37072fd.pth" in message and "--weights" in message
    assert Job.objects.get().status == Job.Status.FAILED


def test_index_cluster_and_map_need_features_first(dataset):
    for command, extra in [("build_index", []), ("cluster", ["--method", "kmeans", "--k", "3"]),
                           ("embed_2d", ["--method", "pca"])]:
        with pytest.raises(CommandError, match="run extract_features --dataset 'Galaxy10 subset' first"):
            _call(command, "--dataset", dataset.name, *extra)


def test_more_clusters_than_galaxies_or_lda_without_a_schema_are_refused(dataset):
    _call("extract_features", "--dataset", dataset.name, "--image-size", "32")
    with pytest.raises(CommandError, match="k=19 clusters for 18 galaxies"):
        _call("cluster", "--dataset", dataset.name, "--method", "spectral", "--k", "19")
    with pytest.raises(CommandError, match="LDA map separates the classes of a label schema"):
        _call("embed_2d", "--dataset", dataset.name, "--method", "lda")
