"""Reading Panoptes annotations, subject data and versions (labeling/services/imports/panoptes_rows.py), and the
shipped mapping files (labeling/services/imports/panoptes_mapping.py) against the shipped trees."""

import json

import pytest

from labeling.services.imports.panoptes_mapping import (
    SHIPPED_MAPPINGS_DIR,
    label_key,
    read_mapping,
    read_mapping_file,
)
from labeling.services.imports.panoptes_rows import (
    DEFAULT_SUBJECT_KEYS,
    subject_candidates,
    version_matches,
    walk_from_annotations,
)
from labeling.services.votes.trees import read_tree_file, shipped_tree_path


def shipped(name: str):
    path = SHIPPED_MAPPINGS_DIR / f"{name}.json"
    raw = read_mapping_file(path)
    return read_mapping(path, raw=raw, tree=read_tree_file(shipped_tree_path(raw["tree"]))), raw


@pytest.mark.parametrize("name", ["gz_decals", "gz2"])
def test_each_shipped_mapping_gives_every_question_and_answer_of_its_tree_once(name):
    mapping, raw = shipped(name)
    tree = json.loads(shipped_tree_path(mapping.tree).read_text())

    assert sorted(t.question for t in mapping.tasks.values()) == sorted(q["key"] for q in tree["questions"])
    for question in tree["questions"]:
        task = next(t for t in mapping.tasks.values() if t.question == question["key"])
        assert sorted(task.answers) == sorted(a["key"] for a in question["answers"])
    assert raw["source"]


def test_the_gz_decals_mapping_reads_the_labels_of_workflow_6122_version_66_425():
    mapping, _ = shipped("gz_decals")
    # Labels as the CSV export writes them, icons included (workflow_version.txt, strings T8.answers.3.label ...).
    annotations = [
        {"task": "T0", "value": "![features_or_disk_new.png](https://panoptes-uploads.zooniverse.org/production/"
                                "project_attached_image/1ec52a74-9e49-4579-91ff-0140eb5371e6.png =60x) "
                                "Features or Disk"},
        {"task": "T2", "value": "![feature_or_disk.png](https://x/y.png =60x) No - Something Else"},
        {"task": "T4", "value": "![bar_weak_sidebyside_acwacw_200x100.png](https://x/y.png =120x60) Weak Bar"},
        {"task": "T5", "value": "No"},
        {"task": "T8", "value": "![bulge_icon_obvious_bulge.png](https://x/y.png =50x) Large"},
        {"task": "T11", "value": "![no.png](https://x/y.png =60x) None"},
        {"task": "T10", "value": ["Nothing Unusual"]},
    ]

    assert walk_from_annotations(annotations, mapping) == {
        "smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "bar": "weak", "has-spiral-arms": "no",
        "bulge-size": "large", "merging": "none"}
    assert mapping.workflow_id == 6122 and mapping.workflow_versions == ("66",)


def test_unanswered_tasks_combo_tasks_and_a_list_of_one_are_read_as_panoptes_aggregation_reads_them():
    mapping, _ = shipped("gz_decals")
    annotations = [
        {"task": "T0", "value": None},  # left without an answer, then answered
        {"task": "T0", "value": 0},
        {"task": "T0", "value": 1},  # a later annotation of the same task is not counted
        {"task": "T99", "value": [{"task": "T1", "value": ["In between"]}, {"task": "T11", "value": ""}]},
        {"task": "T11", "value": 3},
    ]

    assert walk_from_annotations(annotations, mapping) == {"smooth-or-featured": "smooth", "how-rounded": "in-between",
                                                          "merging": "none"}


@pytest.mark.parametrize(("value", "message"), [
    (True, "True is neither an answer index nor an answer label"),
    ("unknown answer label", "answer label 'unknown answer label' is none of the mapping's labels"),
    ([0, 0], "gives 2 answers but question 'smooth-or-featured' takes one"),
    ({"choice": "SMOOTH"}, "holds a drawing, survey or dropdown annotation"),
])
def test_answers_that_cannot_be_read_are_named(value, message):
    mapping, _ = shipped("gz_decals")

    with pytest.raises(ValueError, match=message):
        walk_from_annotations([{"task": "T0", "value": value}], mapping)


def test_labels_match_without_icons_case_or_punctuation():
    assert label_key("![cant_tell_arms.png](https://x/y.png =35x) Can't tell") == label_key("Cant tell") == "canttell"
    assert label_key("Yes -  Edge On Disk") == label_key("yes - edge on disk")


def test_a_major_version_takes_its_minor_versions_and_a_full_version_only_itself():
    assert version_matches("66.425", ("66",)) and version_matches("66.425", ("28", "66.425"))
    assert not version_matches("66.425", ("66.42",)) and not version_matches("166.1", ("66",))


def test_subject_data_offers_galaxy_ids_in_the_order_of_the_keys():
    entry = {"retired": None, "!IAUNAME": "J030050.83-070523.4", "#nsa_id": 54014.0, "Filename": "a/J0300.png",
             "ra": 45.2}

    assert subject_candidates(entry, "16215392", ("iauname", "nsa_id")) == ("J030050.83-070523.4", "54014")
    assert subject_candidates(entry, "16215392", ("filename", "subject_id")) == ("a/J0300.png", "J0300.png",
                                                                                  "J0300", "16215392")
    assert subject_candidates(entry, "16215392", ("id_str", "ra")) == ("45.2",)


def test_the_subject_sets_this_application_exports_are_matched_by_their_external_id():
    # A manifest row of `export --what subjects --format zooniverse` (docs/formats.md), as subject_data brings it back.
    entry = {"retired": None, "image": "subject_0003.jpg", "#external_id": "g10_class_5_3",
             "#dataset": "Galaxy10 subset", "#galaxy_pk": 10, "#ra": 150.19, "#dec": 2.29}

    assert subject_candidates(entry, "91234567", DEFAULT_SUBJECT_KEYS)[0] == "g10_class_5_3"
