"""import_votes --format panoptes on real Panoptes export rows of Galaxy Zoo DECaLS (tests/labeling/imports/data/
panoptes/SOURCE.md): each row of the workflow and versions asked for becomes a volunteer classification with its
volunteer, rows of other versions are counted, an export imported again adds nothing, and the galaxies' vote
summaries are recounted."""

from datetime import UTC, datetime

import pytest

from labeling.models import VolunteerClassification
from tests.labeling.panoptes_helpers import (
    EXCERPT,
    EXCERPT_GALAXIES,
    GZD5,
    GZD5_GALAXIES,
    V28_MAPPING,
    classification,
    edited,
    load_v28_tree,
    make_dataset,
    run,
    snapshot,
    summaries,
)

pytestmark = pytest.mark.django_db

V28 = ("--mapping", str(V28_MAPPING), "--subject-key", "nsa_id")


def test_the_real_rows_of_version_28_become_classifications_and_the_other_versions_are_counted():
    load_v28_tree()
    make_dataset("DR5", EXCERPT_GALAXIES)

    out = run(EXCERPT, "DR5", *V28)

    assert out.strip() == (
        "dataset 'DR5': 2 classifications imported, 0 already imported, 4 of other workflows or versions left out "
        "(workflow 6122 version 39.61: 2; workflow 6122 version 46.73: 1; workflow 6122 version 55.121: 1), "
        "votes recounted for 2 galaxies")
    first = classification("91178981")
    assert first.galaxy.external_id == "189862"  # subject_data's nsa_id 189862.0
    assert first.answers == {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "bar": "no",
                             "has-spiral-arms": "yes", "spiral-winding": "tight", "spiral-arm-count": "cant-tell",
                             "bulge-prominence": "none", "merging": "neither"}  # T10's empty list: no rare feature
    assert first.volunteer_id == "panoptes:290475:MikeWalmsley"
    assert first.created_at == datetime(2018, 2, 20, 10, 44, 42, tzinfo=UTC)
    assert first.source == VolunteerClassification.Source.IMPORTED and first.user is None
    second = classification("91179088")
    assert second.answers["bar"] == "strong" and second.answers["rare-features"] == ["ring"]
    assert second.volunteer_id == first.volunteer_id


def test_the_galaxies_vote_summaries_are_recounted_from_their_classifications():
    load_v28_tree()
    make_dataset("DR5", EXCERPT_GALAXIES)

    run(EXCERPT, "DR5", *V28)

    counted = summaries("DR5", "286096")
    assert counted["bar"].counts == {"no": 0, "weak": 0, "strong": 1} and counted["bar"].total == 1
    assert counted["bulge-prominence"].fractions == {"none": 0.0, "obvious": 1.0, "dominant": 0.0}
    assert counted["rare-features"].counts["ring"] == 1
    assert counted["spiral-winding"].total == 0 and counted["spiral-winding"].reach == 0.0
    assert summaries("DR5", "362563") == {}  # a version 39 row: not imported


def test_importing_the_same_export_again_adds_nothing():
    load_v28_tree()
    make_dataset("DR5", EXCERPT_GALAXIES)
    run(EXCERPT, "DR5", *V28)
    before = snapshot()
    recounted = {key: s.updated_at for key, s in summaries("DR5", "189862").items()}

    out = run(EXCERPT, "DR5", *V28)

    assert "0 classifications imported, 2 already imported" in out
    assert "votes recounted for 0 galaxies" in out
    assert snapshot() == before
    assert {key: s.updated_at for key, s in summaries("DR5", "189862").items()} == recounted


def test_a_row_repeated_in_the_export_is_imported_once(tmp_path):
    load_v28_tree()
    make_dataset("DR5", EXCERPT_GALAXIES)
    path = edited(EXCERPT, tmp_path / "twice.csv", lambda rows: rows.append(dict(rows[0])))

    out = run(path, "DR5", *V28)

    assert "2 classifications imported, 1 already imported" in out
    assert VolunteerClassification.objects.filter(external_id="91178981").count() == 1


def test_other_versions_are_imported_when_asked_for_and_keep_their_volunteers():
    load_v28_tree()
    make_dataset("DR5", EXCERPT_GALAXIES)

    out = run(EXCERPT, "DR5", *V28, "--workflow-version", "28", "--workflow-version", "39.61")

    assert "4 classifications imported" in out
    assert "2 of other workflows or versions left out" in out
    assert classification("92342378").volunteer_id == "panoptes:108:cmk24"
    assert classification("92496727").answers == {"smooth-or-featured": "smooth", "how-rounded": "in-between",
                                                  "merging": "both", "rare-features": ["lens-or-arc"]}


def test_a_volunteer_not_logged_in_is_known_by_the_session_in_the_metadata(tmp_path):
    load_v28_tree()
    make_dataset("DR5", EXCERPT_GALAXIES)

    def anonymous(rows):
        for row in rows[:2]:
            row.update(user_name="not-logged-in-2c61707e96c97a759840", user_id="")
        rows[1]["metadata"] = "{}"  # no session: the export's name it is

    run(edited(EXCERPT, tmp_path / "anonymous.csv", anonymous), "DR5", *V28)

    assert classification("91178981").volunteer_id == (
        "panoptes:session:e69d40c94873e2e4e2868226d5567e0e997bf58e8800eef4def679ff3e69f97f")
    assert classification("91179088").volunteer_id == "panoptes:not-logged-in-2c61707e96c97a759840"


def test_the_shipped_gz_decals_mapping_reads_real_gzd5_classifications_by_answer_index():
    make_dataset("GZD-5", GZD5_GALAXIES)

    out = run(GZD5, "GZD-5", "--mapping", "gz_decals")

    assert out.strip() == ("dataset 'GZD-5': 8 classifications imported, 0 already imported, "
                           "votes recounted for 8 galaxies")
    edge_on = classification("156463633")
    assert edge_on.galaxy.external_id == "J171309.90+294409.6"  # subject_data's "!iauname"
    assert edge_on.answers == {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "yes",
                               "edge-on-bulge": "rounded", "merging": "none"}  # T10, rare features: ignored
    assert classification("156463626").answers == {"smooth-or-featured": "smooth", "how-rounded": "cigar-shaped",
                                                   "merging": "merger"}
    assert classification("156463584").volunteer_id == edge_on.volunteer_id == "panoptes:1882264"
    assert summaries("GZD-5", "J171309.90+294409.6")["edge-on-bulge"].counts == {"boxy": 0, "none": 0,
                                                                                   "rounded": 1}


def test_galaxies_are_found_by_the_subject_id_when_asked(tmp_path):
    make_dataset("by subject", ["28487635", "28487079"])
    path = edited(GZD5, tmp_path / "two.csv", lambda rows: rows.__delitem__(slice(2, None)))

    out = run(path, "by subject", "--mapping", "gz_decals", "--subject-key", "subject_id")

    assert "2 classifications imported" in out
    assert classification("156463587").galaxy.external_id == "28487079"
