"""The demo's held-back labels: which Galaxy10 labels are imported, which stay in the oracle, and neutral names."""

import csv

from labeling.services.demo.load import DEMO_DATA
from labeling.services.demo.oracle import known_labels_split

SOURCE = DEMO_DATA / "galaxy10" / "labels.csv"


def rows(path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_three_labels_per_class_are_imported_and_all_110_stay_in_the_oracle(tmp_path):
    known = known_labels_split(source=SOURCE, out_dir=tmp_path, id_prefix="g10-", seed=7)
    imported, oracle = rows(known.imported), rows(known.oracle)
    assert len(imported) == len(oracle) == 110 and known.held_back == 80
    kept = [row["label"] for row in imported if row["label"]]
    assert sorted(kept) == sorted([str(k) for k in range(10)] * 3)
    assert all(row["class_name"] == "" for row in imported if not row["label"])
    assert [row["id"] for row in imported] == [row["id"] for row in oracle]
    by_file = {row["file"]: row["label"] for row in rows(SOURCE)}
    assert all(by_file[row["file"]] == row["label"] for row in oracle)  # renamed, never relabelled


def test_the_names_and_the_order_say_nothing_of_the_class_and_are_the_same_every_time(tmp_path):
    first = rows(known_labels_split(source=SOURCE, out_dir=tmp_path / "a", id_prefix="g10-", seed=7).oracle)
    again = rows(known_labels_split(source=SOURCE, out_dir=tmp_path / "b", id_prefix="g10-", seed=7).oracle)
    assert first == again
    assert [row["id"] for row in first] == [f"g10-{n:04d}" for n in range(1, 111)]
    assert not any("class" in row["id"] for row in first)
    labels = [row["label"] for row in first]
    assert labels != sorted(labels)  # shuffled: database keys follow this order


def test_without_a_prefix_the_catalogue_keeps_its_names_and_order(tmp_path):
    oracle = rows(known_labels_split(source=SOURCE, out_dir=tmp_path).oracle)
    assert [row["id"] for row in oracle] == [row["id"] for row in rows(SOURCE)]
