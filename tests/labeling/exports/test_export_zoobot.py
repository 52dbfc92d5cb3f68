"""The votes export's zoobot layout: the catalogue Zoobot fine-tunes on (id_str, file_loc, <question>_<answer> vote
counts and <question>_total-votes), from volunteers' GZ DECaLS and GZ2 votes and from a schema's expert labels."""

import csv
import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from labeling.models import ExpertLabel, Galaxy, LabelClass, LabelResolution
from labeling.services.exports.streams import export_rows
from labeling.services.labelling.labels import expert_label_set
from tests.labeling.ml_helpers import galaxy10_subset
from tests.labeling.vote_import_helpers import (
    FEATURED,
    KAGGLE_HEADER,
    SMOOTH,
    SPIRAL,
    SPIRAL_REACH,
    decals_row,
    kaggle_row,
    read_table,
    run,
    stripe82,
    write_decals,
    write_table,
)

pytestmark = pytest.mark.django_db

JPEG = (Path(__file__).resolve().parents[3] / "labeling" / "demo_data" / "galaxy10" / "images"
        / "g10_class_0_0.jpg").read_bytes()
# Zoobot's decals_dr5_ortho_pairs (zoobot/shared/label_metadata.py), written out here as Zoobot publishes them.
ZOOBOT_DR5 = {
    "smooth-or-featured-dr5": ["smooth", "featured-or-disk", "artifact"], "disk-edge-on-dr5": ["yes", "no"],
    "has-spiral-arms-dr5": ["yes", "no"], "bar-dr5": ["strong", "weak", "no"],
    "bulge-size-dr5": ["dominant", "large", "moderate", "small", "none"],
    "how-rounded-dr5": ["round", "in-between", "cigar-shaped"], "edge-on-bulge-dr5": ["boxy", "none", "rounded"],
    "spiral-winding-dr5": ["tight", "medium", "loose"],
    "spiral-arm-count-dr5": ["1", "2", "3", "4", "more-than-4", "cant-tell"],
    "merging-dr5": ["none", "minor-disturbance", "major-disturbance", "merger"],
}
# Zoobot's gz2_ortho_pairs, and which GZ2 table column each answer's count comes from.
ZOOBOT_GZ2 = {
    "smooth-or-featured-gz2": {"smooth": "t01_smooth_or_features_a01_smooth",
                               "featured-or-disk": "t01_smooth_or_features_a02_features_or_disk",
                               "artifact": "t01_smooth_or_features_a03_star_or_artifact"},
    "disk-edge-on-gz2": {"yes": "t02_edgeon_a04_yes", "no": "t02_edgeon_a05_no"},
    "has-spiral-arms-gz2": {"yes": "t04_spiral_a08_spiral", "no": "t04_spiral_a09_no_spiral"},
    "bar-gz2": {"yes": "t03_bar_a06_bar", "no": "t03_bar_a07_no_bar"},
    "bulge-size-gz2": {"dominant": "t05_bulge_prominence_a13_dominant", "obvious": "t05_bulge_prominence_a12_obvious",
                       "just-noticeable": "t05_bulge_prominence_a11_just_noticeable",
                       "no": "t05_bulge_prominence_a10_no_bulge"},
    "something-odd-gz2": {"yes": "t06_odd_a14_yes", "no": "t06_odd_a15_no"},
    "how-rounded-gz2": {"round": "t07_rounded_a16_completely_round", "in-between": "t07_rounded_a17_in_between",
                        "cigar": "t07_rounded_a18_cigar_shaped"},
    "bulge-shape-gz2": {"round": "t09_bulge_shape_a25_rounded", "boxy": "t09_bulge_shape_a26_boxy",
                        "no-bulge": "t09_bulge_shape_a27_no_bulge"},
    "spiral-winding-gz2": {"tight": "t10_arms_winding_a28_tight", "medium": "t10_arms_winding_a29_medium",
                           "loose": "t10_arms_winding_a30_loose"},
    "spiral-arm-count-gz2": {"1": "t11_arms_number_a31_1", "2": "t11_arms_number_a32_2", "3": "t11_arms_number_a33_3",
                             "4": "t11_arms_number_a34_4", "more-than-4": "t11_arms_number_a36_more_than_4",
                             "cant-tell": "t11_arms_number_a37_cant_tell"},
}


def with_images(dataset_name: str, *, skip: int = 0) -> None:
    """Give the dataset's galaxies (all but the first ``skip``) a real JPEG, as if imported with their images."""
    for galaxy in Galaxy.objects.filter(dataset__name=dataset_name).order_by("pk")[skip:]:
        galaxy.image.save(f"{galaxy.external_id}.jpg", ContentFile(JPEG))


def zoobot(dataset_name: str, tmp_path, *options: str) -> tuple[list[str], list[dict], str]:
    """The command's zoobot catalogue: (header, rows, what it said)."""
    out, said = tmp_path / "catalogue.csv", io.StringIO()
    call_command("export", "--dataset", dataset_name, "--what", "votes", "--format", "csv", "--layout", "zoobot",
                 "--out", str(out), *options, stderr=said)
    reader = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
    return reader.fieldnames, list(reader), said.getvalue()


def label_columns(header: list[str]) -> list[str]:
    return [column for column in header[2:] if not column.endswith("_total-votes")]


def test_gz_decals_votes_get_exactly_zoobots_dr5_columns_with_the_counts_and_zero_where_not_asked(tmp_path):
    run(write_decals(tmp_path / "decals.csv", [decals_row("J1", FEATURED), decals_row("J2", SMOOTH)]), "gz-decals",
        "decals")
    with_images("decals")

    header, rows, _ = zoobot("decals", tmp_path, "--zoobot-suffix", "dr5")

    assert header[:2] == ["id_str", "file_loc"]
    assert label_columns(header) == [f"{q}_{a}" for q, answers in ZOOBOT_DR5.items() for a in answers]
    assert [column for column in header if column.endswith("_total-votes")] == [
        f"{q}_total-votes" for q in ZOOBOT_DR5]
    featured, smooth = rows
    assert featured["id_str"] == "J1" and featured["bar-dr5_weak"] == "10" and featured["bar-dr5_total-votes"] == "28"
    assert featured["bulge-size-dr5_dominant"] == "0"  # asked, nobody chose it
    assert smooth["bar-dr5_strong"] == "0" and smooth["bar-dr5_total-votes"] == "0"  # never asked: 0, not blank
    for row in rows:
        assert Path(row["file_loc"]).is_absolute() and Path(row["file_loc"]).read_bytes() == JPEG


def test_real_gz2_stripe82_votes_get_zoobots_gz2_names_and_the_tables_counts(demo_data, tmp_path):
    header, table = read_table(stripe82(demo_data), limit=40)
    run(write_table(tmp_path / "stripe82_40.csv", header, table), "gz2-table", "stripe82")
    with_images("stripe82")

    columns, rows, _ = zoobot("stripe82", tmp_path, "--zoobot-suffix=-gz2")

    expected = {f"{q}_{a}" for q, answers in ZOOBOT_GZ2.items() for a in answers}
    assert expected <= set(label_columns(columns))
    # GZ2's odd-feature question has no name in Zoobot: it comes in the same style, for a schema that wants it.
    assert set(label_columns(columns)) - expected == {f"odd-feature-gz2_{a}" for a in (
        "ring", "lens-or-arc", "disturbed", "irregular", "other", "merger", "dust-lane")}
    source = {row[0]: dict(zip(header, row, strict=True)) for row in table}
    assert [row["id_str"] for row in rows] == [row[0] for row in table]
    for row in rows:
        published = source[row["id_str"]]
        for question, answers in ZOOBOT_GZ2.items():
            for answer, column in answers.items():
                assert int(row[f"{question}_{answer}"]) == int(float(published[f"{column}_count"])), (row, column)


def test_total_votes_is_the_sum_of_each_questions_counts_in_every_row(demo_data, tmp_path):
    header, table = read_table(stripe82(demo_data), limit=40)
    run(write_table(tmp_path / "stripe82_40.csv", header, table), "gz2-table", "stripe82")
    with_images("stripe82")

    columns, rows, _ = zoobot("stripe82", tmp_path)

    questions = [column.removesuffix("_total-votes") for column in columns if column.endswith("_total-votes")]
    assert "smooth-or-featured" in questions and len(questions) == 11
    for row in rows:
        for question in questions:
            answers = [c for c in columns if c.startswith(f"{question}_") and not c.endswith("_total-votes")]
            assert int(row[f"{question}_total-votes"]) == sum(int(row[c]) for c in answers), (row["id_str"], question)


def test_a_schemas_expert_labels_are_one_hot_counts_and_an_admins_resolution_settles_a_galaxy(
        tmp_path, expert, second_expert, admin_user):
    dataset = galaxy10_subset(tmp_path / "import")  # 18 galaxies, each with one imported label of class 2, 5 or 8
    first, second, third = dataset.galaxies.order_by("pk")[:3]
    schema = ExpertLabel.objects.first().schema
    five = LabelClass.objects.get(schema=schema, key="5")
    expert_label_set(galaxy=first, schema=schema, expert=expert, label_class=five)
    expert_label_set(galaxy=second, schema=schema, expert=second_expert, label_class=five)
    LabelResolution.objects.create(galaxy=second, schema=schema, resolved_by=admin_user,
                                   label_class=LabelClass.objects.get(schema=schema, key="8"))

    header, rows, _ = zoobot(dataset.name, tmp_path, "--schema", "galaxy10")

    keys = list(LabelClass.objects.filter(schema=schema).values_list("key", flat=True))
    assert header == ["id_str", "file_loc", "galaxy10_total-votes", *(f"galaxy10_{key}" for key in keys)]
    by_id = {row["id_str"]: row for row in rows}
    assert len(rows) == 18
    imported = ExpertLabel.objects.get(galaxy=third, expert__isnull=True).label_class.key
    assert by_id[third.external_id]["galaxy10_total-votes"] == "1"
    assert [key for key in keys if by_id[third.external_id][f"galaxy10_{key}"] == "1"] == [imported]
    two_opinions = by_id[first.external_id]  # the imported label and the expert's: two votes
    first_imported = ExpertLabel.objects.get(galaxy=first, expert__isnull=True).label_class.key
    counted = {key: int(two_opinions[f"galaxy10_{key}"]) for key in keys if two_opinions[f"galaxy10_{key}"] != "0"}
    assert two_opinions["galaxy10_total-votes"] == "2"
    assert counted == ({"5": 2} if first_imported == "5" else {first_imported: 1, "5": 1})
    resolved = by_id[second.external_id]
    assert resolved["galaxy10_total-votes"] == "1" and resolved["galaxy10_8"] == "1" and resolved["galaxy10_5"] == "0"


def test_copied_images_are_where_file_loc_points(tmp_path):
    run(write_decals(tmp_path / "decals.csv", [decals_row("J1", FEATURED), decals_row("J2", SMOOTH)]), "gz-decals",
        "decals")
    with_images("decals")
    copies = tmp_path / "zoobot images"

    _, rows, _ = zoobot("decals", tmp_path, "--copy-images", str(copies))

    assert sorted(Path(row["file_loc"]).parent for row in rows) == [copies.resolve()] * 2
    assert all(Path(row["file_loc"]).read_bytes() == JPEG for row in rows)


def test_galaxies_without_an_image_file_are_left_out_and_counted(tmp_path):
    run(write_decals(tmp_path / "decals.csv", [decals_row("J1", FEATURED), decals_row("J2", SMOOTH),
                                               decals_row("J3", SMOOTH)]), "gz-decals", "decals")
    with_images("decals", skip=1)
    missing = Galaxy.objects.get(external_id="J3")
    Path(missing.image.path).unlink()

    _, rows, said = zoobot("decals", tmp_path)

    assert [row["id_str"] for row in rows] == ["J2"]
    assert "1 votes rows of 'decals' written" in said and "(2 galaxies without an image file left out)" in said


def test_bad_zoobot_options_are_refused_naming_the_option(tmp_path):
    run(write_decals(tmp_path / "decals.csv", [decals_row("J1", FEATURED)]), "gz-decals", "decals")
    run(write_table(tmp_path / "kaggle.csv", KAGGLE_HEADER, [kaggle_row(100008, SPIRAL, SPIRAL_REACH)]),
        "gz2-kaggle", "kaggle")

    with pytest.raises(CommandError, match=r"zoobot suffix 'dr 5' \(--zoobot-suffix\): letters or digits"):
        zoobot("decals", tmp_path, "--zoobot-suffix", "dr 5")
    with pytest.raises(CommandError, match="no label schema 'nope'"):
        zoobot("decals", tmp_path, "--schema", "nope")
    with pytest.raises(CommandError, match="unknown tree 'gz3'"):
        zoobot("decals", tmp_path, "--tree", "gz3")
    with pytest.raises(CommandError, match="give a schema .* or a tree .*, not both"):
        zoobot("decals", tmp_path, "--schema", "galaxy10", "--tree", "gz2")
    with pytest.raises(CommandError, match="no volunteer vote counts .* not Kaggle's probabilities"):
        zoobot("kaggle", tmp_path)
    dataset = Galaxy.objects.get(external_id="J1").dataset
    with pytest.raises(ValueError, match=r"zoobot_suffix \(--zoobot-suffix\): for the votes export's zoobot layout"):
        export_rows(dataset=dataset, what="votes", layout="gz-decals", suffix="-dr5")
    with pytest.raises(CommandError, match="--zoobot-suffix"):
        call_command("export", "--dataset", "decals", "--what", "votes", "--format", "csv", "--layout",
                     "gz-decals", "--zoobot-suffix", "dr5", stdout=io.StringIO())


def test_the_rest_export_gives_the_zoobot_catalogue_and_names_a_bad_parameter(client, expert, tmp_path):
    run(write_decals(tmp_path / "decals.csv", [decals_row("J1", FEATURED)]), "gz-decals", "decals")
    with_images("decals")
    client.force_login(expert)
    url = f"/api/datasets/{Galaxy.objects.get(external_id='J1').dataset_id}/export/"

    response = client.get(url, {"what": "votes", "layout": "zoobot", "zoobot_suffix": "-dr5"})
    header, row = b"".join(response.streaming_content).decode().splitlines()

    assert header.startswith("id_str,file_loc,smooth-or-featured-dr5_total-votes,smooth-or-featured-dr5_smooth,")
    assert row.startswith("J1,")
    wrong = client.get(url, {"what": "votes", "layout": "zoobot", "zoobot_suffix": "dr_5"})
    assert wrong.status_code == 400 and list(wrong.json()) == ["zoobot_suffix"]
