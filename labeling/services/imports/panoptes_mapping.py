"""Mapping files for Panoptes classification exports: which task of a Zooniverse workflow, and which of its answers,
is which question and answer of one of our decision trees. Reads only.

A mapping file is JSON (the shipped ones are in labeling/trees/panoptes/)::

    {"tree": "gz_decals", "workflow_id": 6122, "workflow_versions": ["66"], "source": "where the tasks came from",
     "subject_keys": ["iauname"],                                  (optional: the subject_data keys naming a galaxy)
     "tasks": {"T0": {"question": "smooth-or-featured",
                      "answers": [{"answer": "smooth", "label": "Smooth"}, ...]},   (in the workflow's answer order)
               "T10": {"ignore": "why this task is left out"}}}

An answer's place in the list is its Panoptes answer index (what the classifications store); its label (or list of
labels) is what a CSV export writes instead, since Panoptes' exporter replaces each index by the answer's label
(zooniverse/panoptes lib/formatter/csv/annotation_for_csv.rb, ``answer_labels``).
"""

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from labeling.services.imports.reports import ImportFailed
from labeling.services.votes.trees import SHIPPED_TREES_DIR
from mlcore.votes.tree import MULTIPLE, parse_tree

SHIPPED_MAPPINGS_DIR = SHIPPED_TREES_DIR / "panoptes"
# Answer labels in Galaxy Zoo workflows start with an icon: "![smooth.png](https://... =60x) Smooth".
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
NOT_A_LETTER_OR_DIGIT = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=4096)
def label_key(label: str) -> str:
    """A label as matching sees it: icons dropped, case and everything but letters and digits ignored, so that
    "![tight_arms.png](...) Can't tell" and "Cant tell" match across workflow versions. Cached: an export repeats
    the few labels of its workflow a million times."""
    return NOT_A_LETTER_OR_DIGIT.sub("", MARKDOWN_IMAGE.sub("", label)).casefold()


@dataclass(frozen=True)
class TaskMap:
    """One workflow task read as one question of the tree."""

    task: str
    question: str
    multiple: bool  # the tree's question takes several answers
    answers: tuple[str, ...]  # the tree's answer key at each Panoptes answer index
    by_label: dict[str, int]  # label_key(label) -> answer index


@dataclass(frozen=True)
class Mapping:
    file: str
    tree: str
    workflow_id: int | None
    workflow_versions: tuple[str, ...]
    subject_keys: tuple[str, ...]
    tasks: dict[str, TaskMap]
    ignored: dict[str, str]  # task -> why it is left out


def mapping_path(name_or_path: str | Path) -> Path:
    """The mapping file: a path, or the name of a shipped mapping ("gz_decals", "gz2").

    Raises:
        ImportFailed: when it is neither.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED_MAPPINGS_DIR / f"{name_or_path}.json"
    if "/" not in str(name_or_path) and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in SHIPPED_MAPPINGS_DIR.glob("*.json")))
    raise ImportFailed([f"{name_or_path}: no such mapping file (shipped mappings: {names})"])


def read_mapping_file(path: Path) -> dict:
    """The mapping file's JSON object; its ``tree`` names the tree to check it against (read_mapping).

    Raises:
        ImportFailed: for a file that cannot be read or is not a JSON object naming a tree.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailed([f"{path}: cannot be read ({exc})"]) from None
    except json.JSONDecodeError as exc:
        raise ImportFailed([f"{Path(path).name}: not valid JSON ({exc})"]) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tree"), str) or not isinstance(raw.get("tasks"), dict):
        raise ImportFailed([f"{Path(path).name}: a mapping is a JSON object with 'tree' (a tree's name) and 'tasks'"])
    return raw


def read_mapping(path: Path, *, raw: dict, tree: dict) -> Mapping:
    """Check a mapping file's ``raw`` content against the tree definition ``tree``.

    Raises:
        ImportFailed: listing every fault, each naming the file and the place in it (tasks.T4.answers[2]).
    """
    name = Path(path).name
    spec = parse_tree(tree)
    problems: list[str] = []
    workflow_id = raw.get("workflow_id")
    if workflow_id is not None and (isinstance(workflow_id, bool) or not isinstance(workflow_id, int)):
        problems.append(f"{name}, workflow_id: {workflow_id!r} is not a whole number")
    versions = raw.get("workflow_versions") or []
    if not isinstance(versions, list) or not all(isinstance(v, str) and v.strip() for v in versions):
        problems.append(f"{name}, workflow_versions: a list of versions such as \"66\" or \"66.425\"")
        versions = []
    keys = raw.get("subject_keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        problems.append(f"{name}, subject_keys: a list of subject_data keys")
        keys = []
    tasks, ignored, questions = {}, {}, {}
    for task, entry in raw["tasks"].items():
        where = f"{name}, tasks.{task}"
        if isinstance(entry, dict) and "ignore" in entry:
            ignored[task] = str(entry["ignore"])
            continue
        if not isinstance(entry, dict) or entry.get("question") not in spec.questions:
            problems.append(f"{where}: needs \"question\" (a question of tree {spec.name!r}) or \"ignore\"")
            continue
        question = spec.questions[entry["question"]]
        if question.key in questions:
            problems.append(f"{where}: question {question.key!r} is also task {questions[question.key]}")
        questions[question.key] = task
        answers, by_label = _answers(entry.get("answers"), question, where, problems)
        tasks[task] = TaskMap(task, question.key, question.kind == MULTIPLE, answers, by_label)
    if problems:
        raise ImportFailed(problems)
    return Mapping(name, spec.name, workflow_id, tuple(v.strip() for v in versions), tuple(keys), tasks, ignored)


def _answers(raw, question, where: str, problems: list[str]) -> tuple[tuple[str, ...], dict[str, int]]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}.answers: a list of {{\"answer\": key, \"label\": text}}, in the workflow's order")
        return (), {}
    answers, by_label = [], {}
    for index, item in enumerate(raw):
        spot = f"{where}.answers[{index}]"
        answer = item.get("answer") if isinstance(item, dict) else None
        if answer not in question.answers:
            problems.append(f"{spot}: {answer!r} is not an answer of question {question.key!r} "
                            f"({', '.join(question.answers)})")
        labels = item.get("label", []) if isinstance(item, dict) else []
        for label in [labels] if isinstance(labels, str) else labels:
            key = label_key(label) if isinstance(label, str) else ""
            if not key:
                problems.append(f"{spot}: label {label!r} has no letter or digit to match")
            elif by_label.get(key, index) != index:
                problems.append(f"{spot}: label {label!r} is also the label of answer {by_label[key]}")
            else:
                by_label[key] = index
        answers.append(answer)
    return tuple(answers), by_label
