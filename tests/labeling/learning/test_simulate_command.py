"""simulate_active_learning: learning curves of each strategy against an oracle CSV, written as JSON and PNG,
recorded for the simulations page, with clear errors for an unusable oracle."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import Simulation
from tests.labeling.import_helpers import write_csv
from tests.labeling.ml_helpers import extracted, galaxy10_subset

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    dataset = galaxy10_subset(tmp_path / "import", per_class=8)
    extracted(dataset)
    return dataset


def simulate(dataset, oracle, out, *strategies, **options):
    arguments = ["simulate_active_learning", "--dataset", dataset.name, "--oracle", str(oracle), "--out", str(out),
                 "--initial", "3", "--step", "3", "--rounds", "3"]
    for strategy in strategies:
        arguments += ["--strategy", strategy]
    for name, value in options.items():
        arguments += [f"--{name.replace('_', '-')}", str(value)]
    call_command(*arguments)


def test_it_writes_learning_curves_for_each_strategy_and_random(dataset, tmp_path, capsys):
    oracle = tmp_path / "import" / "labels.csv"
    simulate(dataset, oracle, tmp_path / "out", "margin", "typiclust")
    result = json.loads((tmp_path / "out" / "learning_curves.json").read_text())
    assert list(result["curves"]) == ["random", "margin", "typiclust"]
    for points in result["curves"].values():
        assert [p["labels"] for p in points] == [3, 6, 9, 12]
        assert all(0 <= p["accuracy"] <= 1 and 0 <= p["balanced_accuracy"] <= 1 for p in points)
    assert (tmp_path / "out" / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    simulation = Simulation.objects.get()
    assert simulation.curves == result["curves"] and simulation.parameters["n_pool"] + \
        simulation.parameters["n_test"] == 24
    output = capsys.readouterr().out
    assert "margin" in output and "typiclust" in output and f"simulation #{simulation.pk}" in output
    # Five seeds by default, each its own run; the verdict table is mlcore.active.curves' over them.
    assert simulation.parameters["seeds"] == [0, 1, 2, 3, 4] and len(result["runs"]) == 5
    assert simulation.savings == result["savings"] and simulation.savings["seeds"] == 5
    assert "5 seeds; target: random's mean balanced accuracy at 12 labels" in output
    assert all("balanced_accuracy_sd" in p and "macro_f1" in p for p in simulation.curves["margin"])


def test_seeds_and_start_are_recorded_and_the_page_shows_the_verdict_the_command_printed(
        dataset, tmp_path, client, expert, capsys):
    simulate(dataset, tmp_path / "import" / "labels.csv", tmp_path / "out", "margin", seeds=2, seed=7, start="own")
    simulation = Simulation.objects.get()
    output = capsys.readouterr().out

    assert simulation.parameters["seeds"] == [7, 8] and simulation.parameters["start"] == "own"
    assert "2 seeds" in output
    client.force_login(expert)
    page = client.get(reverse("simulation-detail", args=[simulation.pk])).content.decode()
    target = f"{simulation.savings['target']:.3f}"
    assert target in output and target in page and "2 seeds (7, 8)" in page
    margin = simulation.savings["per_strategy"]["margin"]
    assert f"{margin['area']:.3f}" in output and f"{margin['area']:.3f}" in page


def test_the_simulation_page_draws_the_recorded_curves(dataset, tmp_path, client, expert):
    simulate(dataset, tmp_path / "import" / "labels.csv", tmp_path / "out", "entropy")
    simulation = Simulation.objects.get()
    client.force_login(expert)
    page = client.get(reverse("simulation-detail", args=[simulation.pk])).content.decode()
    assert 'id="curves-data"' in page and "entropy" in page and 'id="final-table"' in page
    assert f'href="{reverse("simulation-detail", args=[simulation.pk])}"' in client.get(
        reverse("simulation-list")).content.decode()


def test_an_oracle_matched_by_file_names_works_like_one_with_ids(dataset, tmp_path):
    rows = [{"file": f"somewhere/{g.external_id}.png", "label": key} for g, key in zip(
        dataset.galaxies.order_by("pk"), dataset.galaxies.order_by("pk").values_list(
            "expert_labels__label_class__key", flat=True), strict=True)]
    write_csv(tmp_path / "by_file.csv", rows)
    simulate(dataset, tmp_path / "by_file.csv", tmp_path / "out", "margin")
    assert Simulation.objects.get().parameters["n_pool"] + Simulation.objects.get().parameters["n_test"] == 24


@pytest.mark.parametrize("rows, message", [
    ([{"id": "x", "class": "2"}], "labels.csv, row 1, column 'label': required column is missing"),
    ([{"label": "2", "name": "x"}], "needs an 'id' or a 'file' column"),
    ([{"id": "nobody", "label": "2"}], "none of its 1 rows matches a galaxy"),
])
def test_an_unusable_oracle_is_refused_naming_the_file(dataset, tmp_path, rows, message):
    write_csv(tmp_path / "labels.csv", rows)
    with pytest.raises(CommandError, match=message):
        simulate(dataset, tmp_path / "labels.csv", tmp_path / "out", "margin")
    assert not Simulation.objects.exists()


def test_an_empty_label_names_its_row(dataset, tmp_path):
    galaxy = dataset.galaxies.first()
    write_csv(tmp_path / "labels.csv", [{"id": galaxy.external_id, "label": ""}])
    with pytest.raises(CommandError, match=r"labels.csv, row 2, column 'label': empty"):
        simulate(dataset, tmp_path / "labels.csv", tmp_path / "out", "margin")


def test_an_unknown_strategy_is_refused_before_anything_runs(dataset, tmp_path):
    with pytest.raises(CommandError, match="invalid choice: 'psychic'"):
        simulate(dataset, tmp_path / "import" / "labels.csv", tmp_path / "out", "psychic")


def test_a_new_queue_policy_uses_the_strategy_the_simulations_measured_best(dataset):
    from labeling.models import QueuePolicy
    from mlcore.active.query import DEFAULT_STRATEGY

    assert DEFAULT_STRATEGY == "cluster_margin"
    assert QueuePolicy.objects.create(dataset=dataset).strategy == DEFAULT_STRATEGY
