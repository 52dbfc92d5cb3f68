"""Read the rows of a Panoptes classification export (the CSV a Zooniverse project's "Request new classification
export" gives) into checked classifications. Reads only; labeling/services/imports/panoptes.py writes.

Each row is one volunteer's classification of one subject: who (user_name, user_id; a volunteer not logged in has
the user_name "not-logged-in-<token>" and a session hash in metadata), which workflow and version, when, the
annotations (JSON: one {"task", "value"} per task answered) and the subject (subject_ids, and subject_data: JSON
keyed by subject id, holding the metadata the subject was uploaded with). Annotations are read as Zooniverse's own
panoptes-aggregation reads question tasks (panoptes_aggregation/extractors/question_extractor.py: a value or each
value of a list is an answer; the first annotation of a task is the one counted), with the workflow's answer
indices or labels turned into our tree's answer keys by the mapping (labeling/services/imports/panoptes_mapping.py).
The package itself pins numpy below 1.26, hdbscan and pandas 2.0: too heavy to install for reading JSON.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath

from labeling.services.imports.common import EXTERNAL_ID_MAX, NUL, NUL_MESSAGE, problem
from labeling.services.imports.panoptes_mapping import MARKDOWN_IMAGE, Mapping, TaskMap, label_key
from mlcore.votes.tree import TreeSpec, validate_walk

REQUIRED = ("classification_id", "user_name", "user_id", "workflow_id", "workflow_version", "created_at",
            "annotations", "subject_data", "subject_ids")
# Keys of subject_data that commonly name the galaxy, in the order they are tried (compared without Panoptes'
# hiding prefixes "!", "#" and "//", and without case: "!iauname" and "#IAUNAME" are "iauname"): first the
# "#external_id" of the subject sets this application exports (docs/formats.md), then Galaxy Zoo's and Zoobot's
# names. "subject_id", given as a key, is the Panoptes subject id itself, for galaxies imported under it.
DEFAULT_SUBJECT_KEYS = ("external_id", "id_str", "iauname", "objid", "dr7objid", "id", "galaxy_id", "filename",
                        "image", "file_name", "image_name")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".fits", ".fit", ".fits.gz")


@dataclass
class Classification:
    """One export row, checked: ``candidates`` are the galaxy ids its subject could be, best first."""

    number: int
    classification_id: str
    volunteer_id: str
    created_at: datetime
    answers: dict
    subject_id: str
    candidates: tuple[str, ...]
    where: str


def subject_key(key: str) -> str:
    return key.lstrip("!#/").casefold()


def version_matches(version: str, wanted: tuple[str, ...]) -> bool:
    """"66.425" is wanted by "66.425" and by "66" (every minor version of major version 66), as in
    panoptes_aggregation's extract_panoptes_csv."""
    major = version.split(".")[0]
    return any(version == w if "." in w else major == w for w in wanted)


class ExportLayout:
    """Which column holds what, and the rows of one workflow and its versions. ``problems``: the header's faults."""

    def __init__(self, *, header: list[str], file_name: str, mapping: Mapping, spec: TreeSpec, workflow_id: int,
                 versions: tuple[str, ...], subject_keys: tuple[str, ...]):
        self.file, self.mapping, self.spec = file_name, mapping, spec
        self.header = [column.strip() for column in header]
        self.index = {column: i for i, column in enumerate(self.header)}
        self.problems = [problem(f"{file_name}, header", column, "required column is missing")
                         for column in REQUIRED if column not in self.index]
        self.workflow_id, self.versions = str(workflow_id), versions
        self.keys = tuple(subject_key(k) for k in subject_keys) if subject_keys else DEFAULT_SUBJECT_KEYS
        self.explicit_keys = bool(subject_keys)

    def field(self, fields: list[str], column: str) -> str:
        index = self.index.get(column)
        return fields[index].strip() if index is not None and index < len(fields) else ""

    def other_workflow(self, fields: list[str]) -> str | None:
        """None for a row of the workflow and versions asked for, else "workflow W version V" to report it. A row
        whose fields do not fit the header is none of the others: parse names its fault."""
        workflow, version = self.field(fields, "workflow_id"), self.field(fields, "workflow_version")
        wanted = workflow == self.workflow_id and version_matches(version, self.versions)
        if wanted or len(fields) != len(self.header):
            return None
        return f"workflow {workflow or '?'} version {version or '?'}"

    def parse(self, number: int, fields: list[str]) -> tuple[Classification | None, list[str]]:
        """One data row of the wanted workflow (``number`` counts data rows from 1), or None and its problems."""
        classification_id = self.field(fields, "classification_id")
        where = f"{self.file}, row {number}" + (f" (classification {classification_id})" if classification_id else "")
        problems: list[str] = []
        if len(fields) != len(self.header):
            problems.append(f"{where}: {len(fields)} fields but the header has {len(self.header)}")
        if not classification_id.isdecimal():
            problems.append(problem(where, "classification_id", f"{classification_id!r} is not a Panoptes id"))
        if NUL in "".join(fields):
            problems += [problem(where, c, NUL_MESSAGE) for c, t in zip(self.header, fields, strict=False) if NUL in t]
        volunteer = self._volunteer(fields, where, problems)
        created_at = self._created_at(fields, where, problems)
        answers = self._answers(fields, where, problems)
        subject_id, candidates = self._subject(fields, where, problems)
        if problems:
            return None, problems
        return Classification(number, classification_id, volunteer, created_at, answers, subject_id, candidates,
                              where), []

    def _json(self, fields: list[str], column: str, where: str, problems: list[str]):
        text = self.field(fields, column)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(problem(where, column, f"not valid JSON ({exc})"))
            return None

    def _volunteer(self, fields: list[str], where: str, problems: list[str]) -> str:
        """"panoptes:<user_id>:<user_name>" for a volunteer logged in (the id alone when the name would not fit
        volunteer_id, and the id names the volunteer anyway); else "panoptes:session:<hash>" from the
        metadata, as the same session keeps it across exports (the export's "not-logged-in-<token>" name is a
        random token per export and IP, zooniverse/panoptes ClassificationDumpCache#secure_user_ip), else that name."""
        user_id, user_name = self.field(fields, "user_id"), self.field(fields, "user_name")
        if user_id:
            if not user_id.isdecimal():
                problems.append(problem(where, "user_id", f"{user_id!r} is not a Panoptes user id"))
            named = f"panoptes:{user_id}:{user_name}" if user_name else f"panoptes:{user_id}"
            return named if len(named) <= 100 else f"panoptes:{user_id}"
        metadata = self._json(fields, "metadata", where, problems) if "metadata" in self.index else {}
        session = metadata.get("session") if isinstance(metadata, dict) else None
        if isinstance(session, str) and session.strip():
            return f"panoptes:session:{session.strip()}"[:100]
        if user_name:
            return f"panoptes:{user_name}"[:100]
        problems.append(problem(where, "user_name", "no user, and no session in metadata, to tell who classified"))
        return ""

    def _created_at(self, fields: list[str], where: str, problems: list[str]) -> datetime | None:
        text = self.field(fields, "created_at")
        try:
            # Exports write "2018-02-20 10:44:42 UTC"; the API and Caesar "2019-03-29T18:37:52.739Z". (fromisoformat
            # reads both, the first without its " UTC", ten times faster than strptime.)
            moment = datetime.fromisoformat(text[:-4] if text.endswith(" UTC") else text)
        except ValueError:
            problems.append(problem(where, "created_at", f"{text!r} is not a date and time"))
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment

    def _answers(self, fields: list[str], where: str, problems: list[str]) -> dict:
        annotations = self._json(fields, "annotations", where, problems)
        if annotations is None:
            return {}
        try:
            answers = walk_from_annotations(annotations, self.mapping)
            if not answers:
                raise ValueError(f"no answer to any question of tree {self.spec.name!r}")
            validate_walk(self.spec, answers)
        except ValueError as exc:
            problems.append(problem(where, "annotations", str(exc)))
            return {}
        return answers

    def _subject(self, fields: list[str], where: str, problems: list[str]) -> tuple[str, tuple[str, ...]]:
        subject_ids = [s.strip() for s in self.field(fields, "subject_ids").split(";") if s.strip()]
        if len(subject_ids) != 1:
            problems.append(problem(where, "subject_ids", f"{len(subject_ids)} subjects; one galaxy per "
                                                          "classification is expected"))
            return "", ()
        subject_id = subject_ids[0]
        data = self._json(fields, "subject_data", where, problems)
        if data is None:
            return subject_id, ()
        entry = data.get(subject_id) if isinstance(data, dict) else None
        if entry is None and isinstance(data, dict) and len(data) == 1:
            entry = next(iter(data.values()))
        if not isinstance(entry, dict):
            problems.append(problem(where, "subject_data", f"no metadata for subject {subject_id}"))
            return subject_id, ()
        candidates = subject_candidates(entry, subject_id, self.keys)
        if not candidates:
            tried = ", ".join(self.keys)
            hint = "" if self.explicit_keys else "; name the key with --subject-key"
            problems.append(problem(where, "subject_data", f"subject {subject_id} has none of the keys {tried} "
                                                           f"to find its galaxy by{hint}"))
        return subject_id, candidates


def subject_candidates(entry: dict, subject_id: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The galaxy ids a subject's metadata offers, in the order of ``keys``: a value as it is, an integral float as
    an integer (189862.0 -> "189862"), a file name also without its image suffix."""
    by_key = {"subject_id": subject_id}
    for key, value in entry.items():
        by_key.setdefault(subject_key(key), value)  # the first spelling wins
    found: list[str] = []
    for key in keys:
        value = by_key.get(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if value is None or isinstance(value, bool | dict | list):
            continue
        text = str(value).strip()
        forms = [text]
        suffix = max((s for s in IMAGE_SUFFIXES if text.lower().endswith(s)), key=len, default=None)
        if suffix:
            name = PurePath(text).name
            forms += [name, name[: -len(suffix)]]
        found += [form for form in forms if form and len(form) <= EXTERNAL_ID_MAX and form not in found]
    return tuple(found)


def walk_from_annotations(annotations, mapping: Mapping) -> dict:
    """The tree walk {question key: answer key, or a list of keys} that Panoptes annotations describe.

    Raises:
        ValueError: naming the task at fault: an unknown task, a survey or drawing annotation, an answer index out
            of range or an unknown label, several answers to a single-choice question.
    """
    if not isinstance(annotations, list):
        raise ValueError("a list of annotations ({\"task\": ..., \"value\": ...}) is expected")
    answers: dict = {}
    for annotation in _flattened(annotations):
        task = annotation.get("task")
        if task in mapping.ignored:
            continue
        if task not in mapping.tasks:
            raise ValueError(f"unknown task {task!r}: not in mapping {mapping.file} (map it to a question, or "
                             "to \"ignore\")")
        task_map = mapping.tasks[task]
        chosen = _chosen(annotation.get("value"), task_map)
        # A task left unanswered is recorded with an empty value; panoptes-aggregation counts the first annotation
        # of a task and so do we.
        if chosen and task_map.question not in answers:
            answers[task_map.question] = chosen if task_map.multiple else chosen[0]
    return answers


def _flattened(annotations: list):
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise ValueError(f"annotation {annotation!r} is not a {{\"task\", \"value\"}} object")
        value = annotation.get("value")
        # A combo task holds its subtasks' annotations as its value.
        if isinstance(value, list) and value and all(isinstance(v, dict) and "task" in v for v in value):
            yield from _flattened(value)
        else:
            yield annotation


def _chosen(value, task_map: TaskMap) -> list[str]:
    values = value if isinstance(value, list) else [] if value in (None, "") else [value]
    if any(isinstance(v, dict) for v in values):
        raise ValueError(f"task {task_map.task!r} holds a drawing, survey or dropdown annotation; only question "
                         "tasks (single or multiple choice) can be imported: mark it \"ignore\" in the mapping")
    chosen = [task_map.answers[_answer_index(v, task_map)] for v in values]
    if len(chosen) > 1 and not task_map.multiple:
        raise ValueError(f"task {task_map.task!r} gives {len(chosen)} answers but question {task_map.question!r} "
                         "takes one")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"task {task_map.task!r} ticks an answer twice")
    return chosen


def _answer_index(value, task_map: TaskMap) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(task_map.answers):
            raise ValueError(f"task {task_map.task!r}: answer index {value} is out of range (the mapping gives "
                             f"{len(task_map.answers)} answers, 0 to {len(task_map.answers) - 1})")
        return value
    if isinstance(value, str):
        index = task_map.by_label.get(label_key(value))
        if index is None:
            raise ValueError(f"task {task_map.task!r}: answer label {_short(value)!r} is none of the mapping's "
                             f"labels for question {task_map.question!r}")
        return index
    raise ValueError(f"task {task_map.task!r}: {value!r} is neither an answer index nor an answer label")


def _short(text: str) -> str:
    """A label as a problem line shows it: without its icon, cut at 80 characters."""
    shown = MARKDOWN_IMAGE.sub("", text).strip()
    return shown if len(shown) <= 80 else shown[:77] + "..."
