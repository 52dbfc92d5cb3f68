import json

import pytest
from django.contrib.staticfiles import finders
from django.core.management import CommandError, call_command
from PIL import Image

from labeling.models import Answer, DecisionTree, Question
from labeling.services.votes.trees import (
    SHIPPED_TREES_DIR,
    TreeDefinitionError,
    read_tree_file,
    tree_get_or_load_shipped,
    tree_load,
)

pytestmark = pytest.mark.django_db

CHECKBOX_TREE = {
    "name": "tiny",
    "title": "Tiny tree with a checkbox question",
    "questions": [
        {"key": "shape", "text": "Shape?", "answers": [
            {"key": "smooth", "text": "Smooth", "next": None},
            {"key": "disk", "text": "Disk", "next": "odd"},
        ]},
        {"key": "odd", "text": "Anything odd?", "kind": "multiple", "next": None, "answers": [
            {"key": "ring", "text": "Ring"}, {"key": "lens", "text": "Lens"},
        ]},
    ],
}


def test_the_gz2_tree_has_the_published_11_questions_and_37_answers_in_order():
    tree = tree_get_or_load_shipped(name="gz2")
    keys = list(tree.questions.values_list("key", flat=True))
    assert [k[:3] for k in keys] == [f"t{i:02d}" for i in range(1, 12)]
    assert Answer.objects.filter(question__tree=tree).count() == 37
    kaggle = [a.aliases["kaggle"] for q in tree.questions.all() for a in q.answers.all()]
    assert kaggle[0] == "Class1.1" and kaggle[-1] == "Class11.6" and "Class8.7" in kaggle
    dust = Answer.objects.get(question__tree=tree, key="a38_dust_lane")
    assert dust.aliases["kaggle"] == "Class8.7" and dust.next_question is None


def test_the_gz2_tree_leads_smooth_galaxies_to_roundness_and_disks_to_edge_on():
    tree = tree_get_or_load_shipped(name="gz2")
    smooth = Answer.objects.get(question__tree=tree, key="a01_smooth")
    disk = Answer.objects.get(question__tree=tree, key="a02_features_or_disk")
    assert smooth.next_question.key == "t07_rounded"
    assert disk.next_question.key == "t02_edgeon"


def test_the_gz_decals_tree_has_the_ten_catalogue_questions():
    tree = tree_get_or_load_shipped(name="gz_decals")
    assert list(tree.questions.values_list("key", flat=True)) == [
        "smooth-or-featured", "disk-edge-on", "has-spiral-arms", "bar", "bulge-size", "how-rounded",
        "edge-on-bulge", "spiral-winding", "spiral-arm-count", "merging",
    ]


def test_loading_a_tree_twice_changes_nothing():
    first = tree_load(definition=CHECKBOX_TREE)
    ids = sorted(Answer.objects.values_list("id", flat=True))
    second = tree_load(definition=CHECKBOX_TREE)
    assert first.id == second.id
    assert sorted(Answer.objects.values_list("id", flat=True)) == ids


def test_a_checkbox_question_round_trips_through_the_database():
    tree = tree_load(definition=CHECKBOX_TREE)
    odd = Question.objects.get(tree=tree, key="odd")
    assert odd.kind == Question.Kind.MULTIPLE
    definition = tree.as_definition()
    assert definition["questions"][1]["kind"] == "multiple"
    assert definition["questions"][0]["answers"][1]["next"] == "odd"


def test_a_new_version_of_a_tree_drops_removed_answers():
    tree_load(definition=CHECKBOX_TREE)
    smaller = json.loads(json.dumps(CHECKBOX_TREE))
    smaller["questions"][1]["answers"].pop()
    tree_load(definition=smaller)
    assert not Answer.objects.filter(key="lens").exists()


def test_it_refuses_a_tree_with_a_cycle_and_writes_nothing():
    cyclic = json.loads(json.dumps(CHECKBOX_TREE))
    cyclic["questions"][1]["next"] = "shape"
    with pytest.raises(TreeDefinitionError, match="cycle"):
        tree_load(definition=cyclic)
    assert not DecisionTree.objects.exists()


def test_the_load_tree_command_names_the_file_of_a_broken_definition(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"name": "x", "questions": [{"key": "q", "answers": [{"key": "a", "next": "nowhere"}]}]}')
    with pytest.raises(CommandError, match=r"broken\.json.*nowhere"):
        call_command("load_tree", str(bad))
    not_json = tmp_path / "not.json"
    not_json.write_text("{")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("load_tree", str(not_json))


def test_the_load_tree_command_loads_every_shipped_tree_by_default():
    call_command("load_tree")
    assert set(DecisionTree.objects.values_list("name", flat=True)) == {
        p.stem for p in SHIPPED_TREES_DIR.glob("*.json")
    }
    assert read_tree_file(SHIPPED_TREES_DIR / "gz2.json")["name"] == "gz2"


def _with_examples(examples) -> dict:
    definition = json.loads(json.dumps(CHECKBOX_TREE))
    definition["questions"][0]["answers"][0]["examples"] = examples
    return definition


@pytest.mark.parametrize("name", ["gz2", "gz_decals"])
def test_every_shipped_answer_has_help_and_its_example_images_are_real_static_files(name):
    tree = tree_get_or_load_shipped(name=name)
    answers = list(Answer.objects.filter(question__tree=tree).select_related("question"))
    assert all(question.help_text for question in tree.questions.all())
    assert [a.key for a in answers if not a.help_text] == []
    illustrated = [a for a in answers if a.example_images]
    # Galaxy Zoo's own examples cover every answer but a handful (static/trees/examples/SOURCE.md lists them).
    assert len(illustrated) >= len(answers) - 4
    for answer in illustrated:
        for example in answer.example_images:
            path = finders.find(example["image"])
            assert path, example
            with Image.open(path) as image:
                assert image.size == (160, 160)
            assert example["caption"].startswith("Galaxy Zoo's example of")


def test_an_example_given_as_a_plain_path_is_kept_with_an_empty_caption():
    tree_load(definition=_with_examples(["trees/examples/gz2/t01_smooth_or_features--a01_smooth-0.jpg"]))
    assert Answer.objects.get(key="smooth").example_images == [
        {"image": "trees/examples/gz2/t01_smooth_or_features--a01_smooth-0.jpg", "caption": ""}
    ]


@pytest.mark.parametrize("example, message", [
    ("trees/examples/gz2/no-such-galaxy.jpg", "is not a static file"),
    ("../labeling/trees/gz2.json", "relative to the static folder"),
    ("/etc/passwd", "relative to the static folder"),
    ("https://example.org/galaxy.jpg", "relative to the static folder"),
    ({"caption": "no image"}, "neither a static path"),
    (42, "neither a static path"),
])
def test_a_bad_example_image_is_refused_naming_the_answer_and_nothing_is_written(example, message):
    with pytest.raises(TreeDefinitionError, match=rf"question 'shape', answer 'smooth'.*{message}"):
        tree_load(definition=_with_examples([example]))
    assert not DecisionTree.objects.exists()


def test_examples_that_are_not_a_list_are_refused():
    with pytest.raises(TreeDefinitionError, match="'examples' is a list"):
        tree_load(definition=_with_examples("trees/examples/gz2/t01_smooth_or_features--a01_smooth-0.jpg"))
