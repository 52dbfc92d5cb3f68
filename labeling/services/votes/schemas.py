"""Label schemas and their consensus rules, from JSON (labeling/trees/schemas/) or from the labels of a file."""

import json
from pathlib import Path

from django.db import transaction
from django.utils.text import slugify

from labeling.models import ConsensusRule, LabelClass, LabelSchema
from labeling.services.votes.trees import TreeDefinitionError, tree_get_or_load_shipped
from mlcore.votes.fractions import check_kinds

SHIPPED_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "trees" / "schemas"


class SchemaDefinitionError(ValueError):
    """A schema definition that cannot be loaded; the message names the fault."""


def read_schema_file(path: Path) -> dict:
    try:
        definition = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaDefinitionError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise SchemaDefinitionError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(definition, dict) or not definition.get("name") or not definition.get("classes"):
        raise SchemaDefinitionError(f"{path}: a schema file is a JSON object with 'name' and 'classes'")
    return definition


def _check_rule(definition: dict, rule: dict, class_keys: set[str], tree) -> None:
    questions = {q.key: {a.key for a in q.answers.all()} for q in tree.questions.prefetch_related("answers")}
    where = f"schema {definition['name']!r}, rule {rule.get('name')!r}"
    try:
        check_kinds(rule.get("fractions", ["raw"]))
        for conditions in rule.get("conditions", {}).values():
            for condition in conditions:
                if condition.get("fractions"):
                    check_kinds(condition["fractions"])
    except ValueError as exc:
        raise SchemaDefinitionError(f"{where}: {exc}") from None
    uncertain = rule.get("uncertain_class", "uncertain")
    if uncertain not in class_keys:
        raise SchemaDefinitionError(f"{where}: the uncertain class {uncertain!r} is not one of the schema's classes")
    for class_key, conditions in rule.get("conditions", {}).items():
        if class_key not in class_keys:
            raise SchemaDefinitionError(f"{where}: unknown class {class_key!r}")
        for condition in conditions:
            question = condition.get("question")
            if question not in questions:
                raise SchemaDefinitionError(f"{where}, class {class_key!r}: tree {tree.name!r} has no question "
                                            f"{question!r}")
            for answer in condition.get("answers", []):
                if answer not in questions[question]:
                    raise SchemaDefinitionError(f"{where}, class {class_key!r}: question {question!r} has no "
                                                f"answer {answer!r}")


@transaction.atomic
def schema_load(*, definition: dict) -> LabelSchema:
    """Create or update a schema with its classes and consensus rules. Loading twice changes nothing.

    Raises:
        SchemaDefinitionError: for an unknown tree, question, answer or class in a rule.
    """
    schema, _ = LabelSchema.objects.update_or_create(
        name=definition["name"],
        defaults={"title": definition.get("title", ""), "description": definition.get("description", "")},
    )
    class_keys = set()
    for order, raw in enumerate(definition["classes"]):
        key = str(raw["key"])
        LabelClass.objects.update_or_create(
            schema=schema, key=key, defaults={"name": raw.get("name") or key, "order": order}
        )
        class_keys.add(key)
    for raw_rule in definition.get("rules", []):
        try:
            tree = tree_get_or_load_shipped(name=raw_rule["tree"])
        except TreeDefinitionError as exc:
            raise SchemaDefinitionError(f"schema {definition['name']!r}: {exc}") from None
        _check_rule(definition, raw_rule, class_keys, tree)
        ConsensusRule.objects.update_or_create(
            schema=schema,
            name=raw_rule["name"],
            defaults={
                "tree": tree,
                "description": raw_rule.get("description", ""),
                "default_threshold": raw_rule.get("default_threshold", 0.6),
                "min_votes": raw_rule.get("min_votes", 10),
                "conditions": raw_rule["conditions"],
                "uncertain_class_key": raw_rule.get("uncertain_class", "uncertain"),
                "fractions": list(check_kinds(raw_rule.get("fractions", ["raw"]))),
            },
        )
    return schema


def schema_get_or_load_shipped(*, name: str) -> LabelSchema:
    schema = LabelSchema.objects.filter(name=name).first()
    if schema is not None:
        return schema
    path = SHIPPED_SCHEMAS_DIR / f"{name}.json"
    if not path.exists():
        raise SchemaDefinitionError(f"no label schema {name!r} in the database and none shipped in "
                                    f"{SHIPPED_SCHEMAS_DIR}")
    return schema_load(definition=read_schema_file(path))


@transaction.atomic
def schema_ensure_classes(*, name: str, classes: dict[str, str]) -> LabelSchema:
    """The schema ``name`` holding at least the given classes (key -> display name), created when missing.

    Used by imports whose label column defines the classes: new keys are added, existing ones kept.
    """
    schema, _ = LabelSchema.objects.get_or_create(name=slugify(name) or name, defaults={"title": name})
    existing = set(schema.classes.values_list("key", flat=True))
    next_order = schema.classes.count()
    for key in sorted(set(classes) - existing, key=_natural_key):
        LabelClass.objects.create(schema=schema, key=key, name=classes[key] or key, order=next_order)
        next_order += 1
    return schema


def _natural_key(value: str):
    return (0, int(value), "") if value.isdigit() else (1, 0, value)
