import pytest
from django.core.management import CommandError, call_command

from labeling.models import ConsensusRule, LabelClass, LabelSchema
from labeling.services.votes.schemas import (
    SchemaDefinitionError,
    schema_ensure_classes,
    schema_get_or_load_shipped,
    schema_load,
)

pytestmark = pytest.mark.django_db


def test_the_broad_schema_has_four_classes_plus_uncertain_and_artifact_and_a_rule_per_tree():
    schema = schema_get_or_load_shipped(name="broad-morphology")
    assert list(schema.classes.values_list("key", flat=True)) == [
        "elliptical", "lenticular", "spiral", "irregular", "uncertain", "artifact",
    ]
    assert set(schema.rules.values_list("tree__name", flat=True)) == {"gz2", "gz_decals"}


def test_the_galaxy10_schema_keys_its_classes_by_the_ans_value():
    schema = schema_get_or_load_shipped(name="galaxy10")
    assert LabelClass.objects.get(schema=schema, key="5").name == "Barred Spiral"
    assert schema.rules.get().default_threshold == 0.5


def test_loading_a_schema_twice_changes_nothing():
    schema_get_or_load_shipped(name="broad-morphology")
    counts = (LabelSchema.objects.count(), LabelClass.objects.count(), ConsensusRule.objects.count())
    call_command("load_schema")
    call_command("load_schema")
    assert LabelClass.objects.filter(schema__name="broad-morphology").count() == 6
    assert ConsensusRule.objects.filter(schema__name="broad-morphology").count() == counts[2]


def test_it_refuses_a_rule_that_names_an_answer_the_tree_lacks():
    definition = {
        "name": "bad", "classes": [{"key": "e"}, {"key": "uncertain"}],
        "rules": [{"name": "r", "tree": "gz2", "conditions": {
            "e": [{"question": "t01_smooth_or_features", "answers": ["a99_blob"]}]}}],
    }
    with pytest.raises(SchemaDefinitionError, match="a99_blob"):
        schema_load(definition=definition)
    assert not LabelSchema.objects.filter(name="bad").exists()


def test_it_refuses_a_rule_without_the_uncertain_class():
    definition = {"name": "bad", "classes": [{"key": "e"}], "rules": [{"name": "r", "tree": "gz2", "conditions": {}}]}
    with pytest.raises(SchemaDefinitionError, match="uncertain"):
        schema_load(definition=definition)


def test_the_load_schema_command_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("load_schema", str(tmp_path / "absent.json"))


def test_ensure_classes_adds_new_labels_in_natural_order_and_keeps_old_ones():
    schema = schema_ensure_classes(name="my-labels", classes={"10": "ten", "2": "two"})
    schema_ensure_classes(name="my-labels", classes={"1": "one", "2": "other name"})
    assert list(schema.classes.values_list("key", "name")) == [("2", "two"), ("10", "ten"), ("1", "one")]


def test_it_refuses_a_rule_that_names_an_unknown_kind_of_fractions():
    definition = {"name": "odd-fractions", "classes": [{"key": "smooth"}, {"key": "uncertain"}],
                  "rules": [{"name": "r", "tree": "gz2", "fractions": ["debiased", "published"], "conditions": {
                      "smooth": [{"question": "t01_smooth_or_features", "answers": ["a01_smooth"]}]}}]}
    with pytest.raises(SchemaDefinitionError, match="unknown kind of fractions 'published'"):
        schema_load(definition=definition)


def test_the_shipped_gz2_and_decals_rules_read_debiased_fractions_first():
    schema = schema_get_or_load_shipped(name="broad-morphology")
    assert {rule.name: rule.fractions for rule in schema.rules.all()} == {
        "gz2-thresholds": ["debiased", "weighted", "raw"], "gz-decals-thresholds": ["debiased", "weighted", "raw"]}
