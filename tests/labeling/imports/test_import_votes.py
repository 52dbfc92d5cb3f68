"""The import_votes command and its service: the real GZ2 Stripe 82 table, Kaggle and GZ DECaLS layouts, and every
kind of bad input (each problem names file, row and column, and nothing is written)."""

import gzip
import io
import random
from itertools import zip_longest

import pytest
from django.core.management import call_command

from labeling.models import Dataset, Galaxy, VoteSummary
from labeling.services.imports.reports import ImportFailed
from labeling.services.imports.votes import votes_import
from tests.labeling.vote_import_helpers import (
    FEATURED,
    GZ2_TREE,
    KAGGLE_HEADER,
    SMOOTH,
    SPIRAL,
    SPIRAL_REACH,
    decals_row,
    gz2_answers,
    kaggle_row,
    read_table,
    run,
    snapshot,
    stored,
    stripe82,
    write_decals,
    write_table,
)

pytestmark = pytest.mark.django_db

# The whole real table ----------------------------------------------------------------------------------------------


# About 25 s per import on our 2-core machines: the test (import, check, import again, export, import the export)
# takes about a minute and a half there. One test, because the whole table's import is the costly part of each.
@pytest.mark.slow
def test_the_whole_stripe82_table_imports_with_the_published_counts_again_unchanged_and_round_trips(
        demo_data, capsys, tmp_path):
    path = stripe82(demo_data)

    out = run(path, "gz2-table", "GZ2 Stripe 82")

    assert out.strip() == "dataset 'GZ2 Stripe 82': 19761 created, 0 updated, 0 unchanged"
    assert "writing: 19761/19761 row (100%)" in capsys.readouterr().err
    assert Galaxy.objects.filter(dataset__name="GZ2 Stripe 82", image="").count() == 19761
    assert VoteSummary.objects.filter(source="catalogue", imported_from=path.name).count() == 19761 * 11

    header, rows = read_table(path)
    column = {name: i for i, name in enumerate(header)}
    sample = random.Random(2013).sample(rows, 300)
    close_to_published = compared = 0
    for row in sample:
        galaxy = Galaxy.objects.get(dataset__name="GZ2 Stripe 82", external_id=row[column["objid"]])
        assert (galaxy.ra, galaxy.dec) == (float(row[column["ra"]]), float(row[column["dec"]]))
        assert galaxy.metadata == {"sample": row[column["sample"]], "total_votes": int(row[column["total_votes"]]),
                                   "total_classifications": int(row[column["total_classifications"]])}
        summaries = stored("GZ2 Stripe 82", row[column["objid"]])
        assert len(summaries) == 11
        root_total = sum(int(row[column[f"t01_smooth_or_features_{a}_count"]])
                         for q, a in gz2_answers() if q == "t01_smooth_or_features")
        for question in GZ2_TREE["questions"]:
            key = question["key"]
            summary = summaries[key]
            counts = {a["key"]: int(row[column[f"{key}_{a['key']}_count"]]) for a in question["answers"]}
            total = sum(counts.values())
            assert summary.counts == counts and summary.total == total
            assert summary.reach == pytest.approx(total / root_total if root_total else 0.0)
            for answer, count in counts.items():
                prefix = f"{key}_{answer}"
                assert summary.fractions[answer] == pytest.approx(count / total if total else 0.0, abs=1e-12)
                for suffix in ("weight", "fraction", "weighted_fraction", "debiased", "flag"):
                    assert summary.extra[suffix][answer] == pytest.approx(float(row[column[f"{prefix}_{suffix}"]]))
                published = float(row[column[f"{prefix}_fraction"]])
                close_to_published += abs(summary.fractions[answer] - published) <= 0.001
                compared += 1
    # The table's own `_fraction` columns round count / total to 3 decimals for most questions, but not all: the
    # Stripe 82 coadd table publishes, e.g. for 8647474690312505086, t01 counts 4/8/0 with fractions .295/.705.
    # Fractions are computed from the counts (like aggregated votes); the published ones stay in extra.
    assert close_to_published / compared > 0.85

    before = snapshot()
    assert run(path, "gz2-table", "GZ2 Stripe 82").strip() == \
        "dataset 'GZ2 Stripe 82': 0 created, 0 updated, 19761 unchanged"
    assert snapshot() == before

    # The votes export of the whole table reads back into exactly the same summaries (the export's round trip).
    out = tmp_path / "stripe82-votes.csv"
    call_command("export", "--dataset", "GZ2 Stripe 82", "--what", "votes", "--format", "csv", "--out", str(out),
                 stderr=io.StringIO())
    run(out, "gz2-table", "copy")

    def in_order(dataset_name: str):
        return VoteSummary.objects.filter(galaxy__dataset__name=dataset_name, source="catalogue").order_by(
            "galaxy__external_id", "question__key").values_list(
            "galaxy__external_id", "question__key", "counts", "total", "fractions", "reach", "extra").iterator(5000)

    # Compared as they stream: two dictionaries of 217,371 summaries would take a gigabyte.
    compared = 0
    for original, copy in zip_longest(in_order("GZ2 Stripe 82"), in_order("copy")):
        assert copy == original
        compared += 1
    assert compared == 19761 * 11


def test_a_galaxy_whose_published_fractions_disagree_with_its_counts_keeps_both(demo_data, tmp_path):
    header, rows = read_table(stripe82(demo_data), limit=10)
    odd = next(row for row in rows if row[0] == "8647474690312505086")
    run(write_table(tmp_path / "gz2.csv", header, [odd]), "gz2-table")

    smooth = stored("votes", "8647474690312505086")["t01_smooth_or_features"]

    assert smooth.counts == {"a01_smooth": 4, "a02_features_or_disk": 8, "a03_star_or_artifact": 0}
    assert smooth.fractions == pytest.approx({"a01_smooth": 1 / 3, "a02_features_or_disk": 2 / 3,
                                              "a03_star_or_artifact": 0.0})
    assert smooth.extra["fraction"] == {"a01_smooth": 0.295, "a02_features_or_disk": 0.705,
                                        "a03_star_or_artifact": 0.0}


# Other layouts --------------------------------------------------------------------------------------------------


def test_a_kaggle_solutions_file_becomes_per_question_fractions_and_reach(tmp_path, capsys):
    smooth = {"t01_smooth_or_features": {"a01_smooth": 0.9, "a03_star_or_artifact": 0.1},
              "t07_rounded": {"a16_completely_round": 1.0}, "t06_odd": {"a15_no": 1.0}}
    path = write_table(tmp_path / "training_solutions_rev1.csv", KAGGLE_HEADER, [
        kaggle_row(100008, SPIRAL, SPIRAL_REACH),
        kaggle_row(100023, smooth, {"t01_smooth_or_features": 1.0, "t07_rounded": 0.9, "t06_odd": 0.9}),
    ])

    assert run(path, "gz2-kaggle", "Kaggle").strip() == "dataset 'Kaggle': 2 created, 0 updated, 0 unchanged"
    progress = capsys.readouterr().err  # not a terminal: plain lines instead of bars
    assert "checking: 2/2 row (100%)" in progress and "writing: 2/2 row (100%)" in progress

    spiral = stored("Kaggle", "100008")
    assert len(spiral) == 11
    for key, summary in spiral.items():
        expected = {a["key"]: SPIRAL.get(key, {}).get(a["key"], 0.0)
                    for q in GZ2_TREE["questions"] if q["key"] == key for a in q["answers"]}
        assert summary.fractions == pytest.approx(expected, abs=2e-5), key
        assert summary.reach == pytest.approx(SPIRAL_REACH.get(key, 0.0), abs=1e-6), key
        assert summary.counts is None and summary.total is None
    assert spiral["t09_bulge_shape"].reach == 0.0  # nobody saw an edge-on disk
    assert stored("Kaggle", "100023")["t07_rounded"].fractions["a16_completely_round"] == pytest.approx(1.0)


def test_a_gz_decals_catalogue_stores_the_questions_each_galaxy_was_asked_and_keeps_the_rest_as_metadata(tmp_path):
    path = write_decals(tmp_path / "gz_decals_volunteers_5.csv", [
        decals_row("J000000.80+004200.0", FEATURED), decals_row("J000001.29-001535.5", SMOOTH, ra=0.0054),
    ])

    assert run(path, "gz-decals", "GZ DECaLS").strip() == "dataset 'GZ DECaLS': 2 created, 0 updated, 0 unchanged"

    featured = stored("GZ DECaLS", "J000000.80+004200.0")
    assert len(featured) == 10
    bar = featured["bar"]
    assert bar.counts == {"strong": 3, "weak": 10, "no": 15} and bar.total == 28
    assert bar.fractions == pytest.approx({"strong": 3 / 28, "weak": 10 / 28, "no": 15 / 28})
    assert bar.reach == pytest.approx(28 / 40)
    assert bar.extra == {"fraction": {"strong": 0.107143, "weak": 0.357143, "no": 0.535714},
                         "debiased": {"strong": 0.096429, "weak": 0.321429, "no": 0.482143}}
    assert bar.imported_from == "gz_decals_volunteers_5.csv"
    assert featured["spiral-arm-count"].counts["more-than-4"] == 0

    smooth = stored("GZ DECaLS", "J000001.29-001535.5")
    assert sorted(smooth) == ["disk-edge-on", "how-rounded", "merging", "smooth-or-featured"]
    assert smooth["disk-edge-on"].extra["fraction"] == {"yes": 0.0, "no": 1.0}
    galaxy = Galaxy.objects.get(external_id="J000001.29-001535.5")
    assert (galaxy.ra, galaxy.dec) == (0.0054, 0.7)
    assert galaxy.metadata == {"redshift": 0.0735, "elpetro_absmag_r": -21.4, "upload_group": "dr5_pre_active",
                               "wrong_size_statistic": 0.97, "wrong_size_warning": "False",
                               "png_loc": "/dr5/J000/J000001.29-001535.5.png"}


def test_a_question_that_disappears_from_a_catalogue_row_disappears_from_the_galaxy_on_reimport(tmp_path):
    path = tmp_path / "gz_decals.csv"
    write_decals(path, [decals_row("J1", FEATURED)])
    run(path, "gz-decals")
    write_decals(path, [decals_row("J1", {k: v for k, v in FEATURED.items() if k != "merging"})])

    assert run(path, "gz-decals").strip() == "dataset 'votes': 0 created, 1 updated, 0 unchanged"
    assert "merging" not in stored("votes", "J1") and len(stored("votes", "J1")) == 9


# Matching, updating, the service ------------------------------------------------------------------------------------


def test_votes_go_to_the_galaxy_already_in_the_dataset_and_a_changed_count_updates_only_its_galaxy(demo_data,
                                                                                                   tmp_path):
    header, rows = read_table(stripe82(demo_data), limit=3)
    dataset = Dataset.objects.create(name="votes", slug="votes")
    Galaxy.objects.create(dataset=dataset, external_id=rows[0][0], metadata={"note": "imaged first"})
    path = write_table(tmp_path / "gz2.csv", header, rows)

    assert run(path, "gz2-table").strip() == "dataset 'votes': 2 created, 1 updated, 0 unchanged"
    galaxy = Galaxy.objects.get(external_id=rows[0][0])
    assert galaxy.metadata["note"] == "imaged first" and galaxy.metadata["sample"] == "stripe82_c"
    assert galaxy.ra == float(rows[0][header.index("ra")])

    rows[1][header.index("t03_bar_a06_bar_count")] = str(int(rows[1][header.index("t03_bar_a06_bar_count")]) + 5)
    write_table(path, header, rows)
    untouched = stored("votes", rows[2][0])["t03_bar"].updated_at

    assert run(path, "gz2-table").strip() == "dataset 'votes': 0 created, 1 updated, 2 unchanged"
    bar = stored("votes", rows[1][0])["t03_bar"]
    assert bar.counts["a06_bar"] == int(rows[1][header.index("t03_bar_a06_bar_count")])
    assert bar.total == sum(bar.counts.values())
    assert stored("votes", rows[2][0])["t03_bar"].updated_at == untouched
    assert Galaxy.objects.count() == 3 and VoteSummary.objects.count() == 33


def test_the_service_reports_progress_and_reads_plain_and_gzipped_csv_alike(demo_data, tmp_path):
    header, rows = read_table(stripe82(demo_data), limit=4)
    plain = write_table(tmp_path / "four.csv", header, rows)
    zipped = tmp_path / "four.csv.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    calls = []

    report = votes_import(dataset_name="plain", fmt="gz2-table", path=plain,
                          progress=lambda done, total, phase: calls.append((phase, done, total)))
    again = votes_import(dataset_name="zipped", fmt="gz2-table", path=zipped)

    assert (report.created, again.created) == (4, 4)
    assert calls[-1] == ("writing", 4, 4) and ("checking", 4, 4) in calls
    assert [s.counts for s in VoteSummary.objects.filter(galaxy__dataset__name="plain").order_by("pk")] == \
        [s.counts for s in VoteSummary.objects.filter(galaxy__dataset__name="zipped").order_by("pk")]


def test_the_service_refuses_an_unknown_format_and_a_blank_dataset_name(demo_data):
    with pytest.raises(ImportFailed, match="unknown format 'gz3'"):
        votes_import(dataset_name="x", fmt="gz3", path=stripe82(demo_data))
    with pytest.raises(ImportFailed, match="needs a name"):
        votes_import(dataset_name="  ", fmt="gz2-table", path=stripe82(demo_data))
    assert snapshot()["datasets"] == 0
