"""Load decision trees from their JSON definitions (labeling/trees/*.json or a user's own file)."""

import json
from pathlib import Path

from django.db import transaction

from labeling.models import Answer, DecisionTree, Question
from mlcore.votes import MULTIPLE, parse_tree

SHIPPED_TREES_DIR = Path(__file__).resolve().parent.parent / "trees"


class TreeDefinitionError(ValueError):
    """A tree file that cannot be loaded; the message names the file and the fault."""


def read_tree_file(path: Path) -> dict:
    try:
        definition = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TreeDefinitionError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise TreeDefinitionError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(definition, dict) or "questions" not in definition:
        raise TreeDefinitionError(f"{path}: a tree file is a JSON object with 'name' and 'questions'")
    try:
        parse_tree(definition)
    except ValueError as exc:
        raise TreeDefinitionError(f"{path}: {exc}") from None
    return definition


@transaction.atomic
def tree_load(*, definition: dict) -> DecisionTree:
    """Create or update a tree from its definition. Reloading the same definition changes nothing.

    Questions and answers missing from a new version of the definition are deleted, with their vote summaries.

    Raises:
        TreeDefinitionError: when the definition does not describe a valid tree.
    """
    try:
        parse_tree(definition)
    except ValueError as exc:
        raise TreeDefinitionError(str(exc)) from None
    tree, _ = DecisionTree.objects.update_or_create(
        name=definition["name"],
        defaults={
            "title": definition.get("title") or definition["name"],
            "description": definition.get("description", ""),
            "version": definition.get("version", ""),
        },
    )
    by_key: dict[str, Question] = {}
    for order, raw in enumerate(definition["questions"]):
        question, _ = Question.objects.update_or_create(
            tree=tree,
            key=raw["key"],
            defaults={
                "text": raw.get("text") or raw["key"],
                "help_text": raw.get("help", ""),
                "kind": raw.get("kind", "single"),
                "order": order,
                "aliases": raw.get("aliases") or {},
            },
        )
        by_key[question.key] = question
    tree.questions.exclude(key__in=by_key).delete()
    for raw in definition["questions"]:
        question = by_key[raw["key"]]
        if raw.get("kind") == MULTIPLE:
            question.next_question = by_key.get(raw.get("next"))
            question.save(update_fields=["next_question"])
        answer_keys = []
        for order, raw_answer in enumerate(raw["answers"]):
            Answer.objects.update_or_create(
                question=question,
                key=raw_answer["key"],
                defaults={
                    "text": raw_answer.get("text") or raw_answer["key"],
                    "help_text": raw_answer.get("help", ""),
                    "order": order,
                    "next_question": by_key.get(raw_answer.get("next")),
                    "example_images": raw_answer.get("examples") or [],
                    "aliases": raw_answer.get("aliases") or {},
                },
            )
            answer_keys.append(raw_answer["key"])
        question.answers.exclude(key__in=answer_keys).delete()
    return tree


def shipped_tree_path(name: str) -> Path:
    return SHIPPED_TREES_DIR / f"{name}.json"


def tree_get_or_load_shipped(*, name: str) -> DecisionTree:
    """The tree called ``name``, loading the shipped definition of that name when the database lacks it."""
    tree = DecisionTree.objects.filter(name=name).first()
    if tree is not None:
        return tree
    path = shipped_tree_path(name)
    if not path.exists():
        raise TreeDefinitionError(f"no tree {name!r} in the database and none shipped in {SHIPPED_TREES_DIR}")
    return tree_load(definition=read_tree_file(path))
