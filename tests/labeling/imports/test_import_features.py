"""Importing an outside model's feature vectors: npy with an ids file, CSV and Parquet become a feature set that the
neighbour index, clustering, the probability model and the queues use like an extracted one; bad input is named by
row and column and nothing is written."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from labeling.models import (
    Activation,
    Classifier,
    ExpertLabel,
    FeatureSet,
    Galaxy,
    LabelClass,
    LabelSchema,
    ModelVersion,
)
from labeling.selectors.similarity import neighbour_pairs, opened_store
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.imports.features import features_import
from labeling.services.imports.reports import ImportFailed
from labeling.services.learning.activation import version_activate
from labeling.services.learning.classifier import classifier_fit, current_feature_set
from labeling.services.learning.jobs import extraction_start
from labeling.services.learning.retrain import retrain_start
from tests.conftest import REPO_ROOT
from tests.labeling.factories import make_galaxies
from tests.labeling.ml_helpers import clustered, indexed, tiny_model

pytestmark = pytest.mark.django_db

N, DIM = 30, 8


@pytest.fixture
def galaxies():
    return make_galaxies(N, dataset_name="outside")


def grouped_vectors(n: int = N, dim: int = DIM) -> np.ndarray:
    """Three well separated groups (galaxy i in group i % 3); galaxies 0 and 3 are near twins."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, dim)) * 5
    vectors = centres[np.arange(n) % 3] + rng.normal(scale=0.3, size=(n, dim))
    vectors[3] = vectors[0] + 0.01
    return vectors.astype(np.float32)


def npy_files(folder, vectors, ids):
    np.save(folder / "features.npy", vectors)
    (folder / "ids.txt").write_text("".join(f"{external_id}\n" for external_id in ids))
    return folder / "features.npy", folder / "ids.txt"


def csv_file(path, vectors, ids):
    lines = ["id," + ",".join(f"f{j}" for j in range(vectors.shape[1]))]
    lines += [f"{external_id}," + ",".join(repr(float(v)) for v in row)
              for external_id, row in zip(ids, vectors, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def imported_npy(tmp_path, vectors=None, **options):
    vectors = grouped_vectors() if vectors is None else vectors
    path, ids = npy_files(tmp_path, vectors, [f"g{i}" for i in range(len(vectors))])
    return features_import(dataset_name="outside", name="zoobot", path=path, ids=ids, **options)


def stored(feature_set, galaxies) -> np.ndarray:
    return opened_store(feature_set).get([galaxy.pk for galaxy in galaxies])


def test_an_npy_array_with_its_ids_becomes_a_named_feature_set(galaxies, tmp_path):
    report = imported_npy(tmp_path)
    feature_set = FeatureSet.objects.get(pk=report.feature_set)
    assert (report.imported, report.count, report.dim) == (N, N, DIM)
    assert feature_set.model_version.name == "zoobot" and feature_set.model_version.is_imported
    assert feature_set.source == "features.npy" and feature_set.dtype == "float16"
    assert str(feature_set) == "outside · zoobot (imported from features.npy)"
    np.testing.assert_allclose(stored(feature_set, galaxies), grouped_vectors(), rtol=1e-3, atol=1e-3)


def test_the_api_gives_an_imported_model_no_network_or_image_size(galaxies, tmp_path, client, admin_user):
    version = FeatureSet.objects.get(pk=imported_npy(tmp_path).feature_set).model_version
    client.force_login(admin_user)
    data = client.get(f"/api/model-versions/{version.pk}/").json()
    assert (data["weights"], data["backbone"], data["image_size"], data["feature_dim"]) == ("imported", None, None, DIM)
    extracted = tiny_model()
    data = client.get(f"/api/model-versions/{extracted.pk}/").json()
    assert (data["backbone"], data["image_size"]) == (extracted.backbone, extracted.image_size)


def test_the_training_page_says_activating_an_imported_model_indexes_and_extracts_nothing(galaxies, tmp_path,
                                                                                         client, admin_user):
    version = FeatureSet.objects.get(pk=imported_npy(tmp_path).feature_set).model_version
    client.force_login(admin_user)
    page = client.get("/training/").content.decode()
    row = page.split(f">{version.name}<")[1].split("</tr>")[0]
    assert 'title="Index its imported vectors, activate, cluster, rebuild the queues">Activate</button>' in row
    assert "xtract" not in row


def test_the_imported_set_builds_an_index_and_neighbours_come_back(galaxies, tmp_path):
    feature_set = indexed(FeatureSet.objects.get(pk=imported_npy(tmp_path).feature_set))
    assert feature_set.index_count == N
    nearest = neighbour_pairs(galaxy=galaxies[0], feature_set=feature_set, k=5)
    assert nearest[0][0] == galaxies[3].pk
    assert {galaxies[pk_index].pk for pk_index in range(0, N, 3)} >= {pk for pk, _ in nearest}


def test_clustering_runs_on_the_imported_set_and_finds_its_groups(galaxies, tmp_path):
    clustering = clustered(FeatureSet.objects.get(pk=imported_npy(tmp_path).feature_set), k=3)
    clusters = dict(clustering.assignments.values_list("galaxy_id", "cluster"))
    groups = {i % 3: clusters[galaxy.pk] for i, galaxy in enumerate(galaxies)}
    assert all(clusters[galaxy.pk] == groups[i % 3] for i, galaxy in enumerate(galaxies))
    assert sorted(clustering.sizes) == [10, 10, 10]


def test_a_probability_model_fits_on_the_imported_set(galaxies, tmp_path):
    feature_set = FeatureSet.objects.get(pk=imported_npy(tmp_path).feature_set)
    schema = LabelSchema.objects.create(name="groups")
    classes = [LabelClass.objects.create(schema=schema, key=key, name=key, order=n) for n, key in enumerate("abc")]
    for i, galaxy in enumerate(galaxies[:12]):
        ExpertLabel.objects.create(galaxy=galaxy, schema=schema, label_class=classes[i % 3], provenance="test")
    classifier = classifier_fit(feature_set=feature_set, schema=schema)
    predicted = dict(classifier.predictions.values_list("galaxy_id", "label_class__key"))
    assert len(predicted) == N
    assert all(predicted[galaxy.pk] == "abc"[i % 3] for i, galaxy in enumerate(galaxies))


def test_a_csv_with_an_id_column_gives_the_same_vectors(galaxies, tmp_path):
    path = csv_file(tmp_path / "features.csv", grouped_vectors(), [f"g{i}" for i in range(N)])
    report = features_import(dataset_name="outside", name="from csv", path=path)
    np.testing.assert_allclose(stored(FeatureSet.objects.get(pk=report.feature_set), galaxies), grouped_vectors(),
                               rtol=1e-3, atol=1e-3)


def test_a_parquet_file_with_a_vector_column_gives_the_same_vectors(galaxies, tmp_path):
    table = pa.table({"id": [f"g{i}" for i in range(N)], "features": list(grouped_vectors())})
    pq.write_table(table, tmp_path / "features.parquet", row_group_size=7)
    report = features_import(dataset_name="outside", name="from parquet", path=tmp_path / "features.parquet")
    assert report.imported == N
    np.testing.assert_allclose(stored(FeatureSet.objects.get(pk=report.feature_set), galaxies), grouped_vectors(),
                               rtol=1e-3, atol=1e-3)


def test_use_makes_it_the_features_the_dataset_uses(galaxies, tmp_path):
    report = imported_npy(tmp_path, use=True)
    dataset = galaxies[0].dataset
    assert current_feature_set(dataset=dataset).pk == report.feature_set
    assert Activation.objects.get(dataset=dataset).model_version.name == "zoobot"


def test_activating_an_imported_model_indexes_its_vectors_then_switches(galaxies, tmp_path,
                                                                      django_capture_on_commit_callbacks):
    report = imported_npy(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        job = version_activate(version=ModelVersion.objects.get(name="zoobot"), dataset=galaxies[0].dataset)
    assert job.kind == "build_index"
    dataset = galaxies[0].dataset
    dataset.refresh_from_db()
    assert dataset.active_version.name == "zoobot"
    assert FeatureSet.objects.get(pk=report.feature_set).has_index


def test_nothing_is_ever_extracted_with_an_imported_model(galaxies, tmp_path):
    imported_npy(tmp_path)
    with pytest.raises(ValueError, match="no backbone"):
        extraction_start(dataset=galaxies[0].dataset, model_version=ModelVersion.objects.get(name="zoobot"))


def test_a_retrain_cycle_does_not_start_from_an_imported_model(galaxies, tmp_path):
    imported_npy(tmp_path)
    with pytest.raises(ValueError, match="no weights to train from"):
        retrain_start(dataset=galaxies[0].dataset, base=ModelVersion.objects.get(name="zoobot"), enqueue=False)


def test_importing_again_replaces_the_files_galaxies_and_keeps_the_others(galaxies, tmp_path):
    first = imported_npy(tmp_path)
    feature_set = indexed(FeatureSet.objects.get(pk=first.feature_set))
    newer = np.full((2, DIM), 7.0, np.float32)
    path, ids = npy_files(tmp_path, newer, ["g0", "g1"])
    report = features_import(dataset_name="outside", name="zoobot", path=path, ids=ids)
    feature_set.refresh_from_db()
    assert (report.feature_set, report.imported, report.kept, report.count) == (feature_set.pk, 2, N - 2, N)
    assert not feature_set.has_index and not feature_set.index_file.exists()
    np.testing.assert_allclose(stored(feature_set, galaxies[:3]), [newer[0], newer[1], grouped_vectors()[2]],
                               rtol=1e-3, atol=1e-3)


def nothing_written(features_root) -> bool:
    leftovers = [p for p in features_root.rglob("*") if p.is_file()] if features_root.exists() else []
    return not FeatureSet.objects.exists() and not ModelVersion.objects.exists() and not leftovers


def refused(**kwargs) -> list[str]:
    with pytest.raises(ImportFailed) as failure:
        features_import(dataset_name="outside", name="zoobot", **kwargs)
    return failure.value.problems


def test_unknown_and_repeated_ids_are_named_by_row_and_nothing_is_written(galaxies, tmp_path, features_root):
    path, ids = npy_files(tmp_path, grouped_vectors(5), ["g0", "g1", "nobody", "g1", "g4"])
    assert refused(path=path, ids=ids) == [
        "features.npy, row 3, column 'id': no galaxy 'nobody' in dataset 'outside'",
        "features.npy, row 4, column 'id': 'g1' again (first in row 2)"]
    assert nothing_written(features_root)


def test_a_repeat_in_a_later_chunk_names_the_first_row(galaxies, tmp_path, monkeypatch, features_root):
    monkeypatch.setattr("mlcore.features.vector_files.chunk_rows", lambda dim: 2)
    path, ids = npy_files(tmp_path, grouped_vectors(5), ["g0", "g1", "g2", "g3", "g0"])
    assert refused(path=path, ids=ids) == ["features.npy, row 5, column 'id': 'g0' again (first in row 1)"]
    assert nothing_written(features_root)


def test_nan_and_infinite_values_are_named_by_row_and_column(galaxies, tmp_path, features_root):
    vectors = grouped_vectors(4)
    vectors[1, 5], vectors[3, 0] = np.nan, -np.inf
    path, ids = npy_files(tmp_path, vectors, ["g0", "g1", "g2", "g3"])
    assert refused(path=path, ids=ids) == [
        "features.npy, row 2, column 'value 6': not a finite number: NaN",
        "features.npy, row 4, column 'value 1': not a finite number: infinite"]
    assert nothing_written(features_root)


def test_csv_rows_of_another_length_are_named_and_nothing_is_written(galaxies, tmp_path, features_root):
    path = tmp_path / "features.csv"
    path.write_text("id,f0,f1\ng0,1,2\ng1,1\ng2,1,2,3\ng3,x,2\n")
    problems = refused(path=path)
    assert problems == ["features.csv, row 3: 1 values and an id, but the header has 2 value columns",
                        "features.csv, row 4: 3 values and an id, but the header has 2 value columns",
                        "features.csv, row 5, column 'f0': 'x' is not a number"]
    assert nothing_written(features_root)


def test_a_dimension_other_than_the_names_is_refused(galaxies, tmp_path):
    imported_npy(tmp_path)
    path = csv_file(tmp_path / "wider.csv", np.ones((2, DIM + 1), np.float32), ["g0", "g1"])
    assert refused(path=path) == [f"wider.csv: {DIM + 1}-d vectors, but the features imported as 'zoobot' are "
                                  f"{DIM}-d; import them under another name"]
    assert FeatureSet.objects.get().count == N


def test_the_name_of_an_extracted_model_is_refused(galaxies, tmp_path):
    version = tiny_model()
    path, ids = npy_files(tmp_path, grouped_vectors(), [f"g{i}" for i in range(N)])
    with pytest.raises(ImportFailed, match="extracted here has that name"):
        features_import(dataset_name="outside", name=version.name, path=path, ids=ids)


def test_the_command_prints_a_summary_and_fails_listing_problems(galaxies, tmp_path, capsys):
    path, ids = npy_files(tmp_path, grouped_vectors(), [f"g{i}" for i in range(N)])
    call_command("import_features", str(path), "--dataset", "outside", "--name", "zoobot", "--ids", str(ids))
    out = capsys.readouterr().out
    assert f"{N} {DIM}-d vectors imported as 'zoobot'" in out and "build_index --dataset outside" in out
    bad, _ = npy_files(tmp_path, grouped_vectors(), [f"x{i}" for i in range(N)])
    with pytest.raises(CommandError, match=f"{N} problem\\(s\\), nothing was imported"):
        call_command("import_features", str(bad), "--dataset", "outside", "--name", "other", "--ids", str(ids))
    assert Classifier.objects.count() == 0



def test_the_documented_example_file_imports():
    example = REPO_ROOT / "docs" / "examples" / "outside_features.csv"
    dataset = dataset_get_or_create(name="outside")
    for line in example.read_text().splitlines()[1:]:
        Galaxy.objects.create(dataset=dataset, external_id=line.split(",")[0])
    report = features_import(dataset_name="outside", name="example", path=example)
    assert (report.imported, report.dim) == (3, 4)
