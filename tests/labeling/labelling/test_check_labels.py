"""check_labels: each expert's labels against labels known from elsewhere (the demo's oracle, a catalogue)."""

import io

import pytest
from django.core.management import CommandError, call_command

from labeling.models import LabelClass
from labeling.services.labelling.labels import expert_label_set
from tests.labeling.queue_helpers import partly_labelled

pytestmark = pytest.mark.django_db


def check(**options) -> str:
    out = io.StringIO()
    call_command("check_labels", stdout=out, **options)
    return out.getvalue()


def test_it_counts_each_experts_agreement_and_names_the_confusions(tmp_path, expert, second_expert):
    dataset, schema = partly_labelled(tmp_path / "import")
    known = tmp_path / "import" / "labels.csv"  # every galaxy's Galaxy10 class: g10_class_<class>_<n>
    unlabelled = list(dataset.galaxies.filter(expert_labels__isnull=True).order_by("pk")[:4])
    true_key = [galaxy.external_id.split("_")[2] for galaxy in unlabelled]
    given = true_key[:3] + ["2" if true_key[3] != "2" else "5"]
    for galaxy, key in zip(unlabelled, given, strict=True):
        expert_label_set(galaxy=galaxy, schema=schema, expert=expert,
                         label_class=LabelClass.objects.get(schema=schema, key=key))

    output = check(dataset=dataset.name, schema="galaxy10", known=str(known))

    assert f"{dataset.galaxies.count()} galaxies of {dataset.name!r} with a known galaxy10 label" in output
    assert "edwin: 3 of 4 agree (75%)" in output
    assert f"confused {true_key[3]}->{given[3]} x1" in output
    assert second_expert.username not in output  # nobody is listed for labels they never gave
    assert "6 of" not in output  # the imported labels are where the known ones came from: not compared


def test_it_refuses_known_labels_that_are_not_classes_of_the_schema(tmp_path):
    dataset, _ = partly_labelled(tmp_path / "import")
    bad = tmp_path / "known.csv"
    first = dataset.galaxies.order_by("pk").first()
    bad.write_text(f"id,label\n{first.external_id},spiral\n")
    with pytest.raises(CommandError, match=r"known.csv: labels spiral are not classes of schema 'galaxy10'"):
        check(dataset=dataset.name, schema="galaxy10", known=str(bad))
    with pytest.raises(CommandError, match="no label schema 'nope'"):
        check(dataset=dataset.name, schema="nope", known=str(bad))
