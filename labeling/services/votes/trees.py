"""Load decision trees from their JSON definitions (labeling/trees/*.json or a user's own file)."""

import json
from pathlib import Path, PurePosixPath

from django.contrib.staticfiles import finders
from django.db import transaction

from labeling.models import Answer, DecisionTree, Question
from mlcore.votes.tree import MULTIPLE, parse_tree

SHIPPED_TREES_DIR = Path(__file__).resolve().parents[2] / "trees"


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


def answer_examples(raw_answer: dict, *, where: str) -> list[dict]:
    """An answer's example images as ``[{"image": static path, "caption": text}]``.

    A tree file may give each example as a static path or as ``{"image": path, "caption": text}``. The images are
    static files (shipped under static/, or in a folder of STATICFILES_DIRS): nothing is fetched from elsewhere.

    Raises:
        TreeDefinitionError: naming the answer (``where``) for an example that is not a relative path to a static
            file that exists.
    """
    raw = raw_answer.get("examples") or []
    if not isinstance(raw, list):
        raise TreeDefinitionError(f"{where}: 'examples' is a list of static image paths")
    examples = []
    for item in raw:
        image, caption = (item, "") if isinstance(item, str) else (
            (item.get("image"), item.get("caption", "")) if isinstance(item, dict) else (None, ""))
        if not isinstance(image, str) or not image or not isinstance(caption, str):
            raise TreeDefinitionError(f"{where}: example {item!r} is neither a static path nor "
                                      '{"image": path, "caption": text}')
        parts = PurePosixPath(image)
        if parts.is_absolute() or ".." in parts.parts or "://" in image:
            raise TreeDefinitionError(f"{where}: example {image!r} must be a path relative to the static folder")
        if finders.find(image) is None:
            raise TreeDefinitionError(f"{where}: example image {image!r} is not a static file (put it under "
                                      "static/ or in a folder listed in STATICFILES_DIRS)")
        examples.append({"image": image, "caption": caption})
    return examples


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
    examples = {
        (raw["key"], raw_answer["key"]): answer_examples(
            raw_answer, where=f"tree {definition['name']!r}, question {raw['key']!r}, answer {raw_answer['key']!r}")
        for raw in definition["questions"] for raw_answer in raw["answers"]
    }
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
                    "example_images": examples[(raw["key"], raw_answer["key"])],
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
