"""The Galaxy Zoo example-set layout: each image is the science team's example of ONE answer to ONE question.

labels.csv columns: file, tree, survey, question_index, question_title, question_text, answer_kind (answer: single
choice, checkbox: multiple choice), answer_index, answer_text, example_index, width, height, git_blob,
is_processed_real. One galaxy can be the example of several answers (same git_blob, same bytes), so the galaxy is
keyed by git_blob and created once; each row is an expert label in the schema of its tree and question,
``gz-examples-<tree>-q<question_index>``, whose classes are keyed by answer_index.
"""

from pathlib import Path

from django.conf import settings
from django.utils.text import slugify

from labeling.models import LabelSchema
from labeling.services.imports.common import (
    CLASS_KEY_MAX,
    CLASS_NAME_MAX,
    SCHEMA_NAME_MAX,
    Candidate,
    Plan,
    SchemaPlan,
    SeenBefore,
    check_external_id,
    csv_rows,
    existing_dataset,
    path_inside,
    problem,
    stored_filename,
)
from labeling.services.imports.images import image_inspect
from labeling.services.imports.reports import ImportFailed, Progress

REQUIRED = ["file", "tree", "survey", "question_index", "question_title", "question_text", "answer_kind",
            "answer_index", "answer_text", "git_blob"]
ANSWER_KINDS = {"answer", "checkbox"}
TITLE_MAX = LabelSchema._meta.get_field("title").max_length


def _index(value: str) -> int:
    if not value.isdigit():
        raise ValueError(f"{value!r} is not a whole number >= 0")
    return int(value)


def _flag(value: str) -> bool:
    if value.lower() not in {"", "0", "1", "true", "false"}:
        raise ValueError(f"{value!r} is not 0 or 1")
    return value.lower() in {"1", "true"}


def _check_row(where: str, values: dict[str, str], info) -> tuple[dict, list[str]]:
    """The row's parsed fields, and its problems."""
    faults, parsed = [], {}
    checks = [("question_index", _index), ("answer_index", _index), ("is_processed_real", _flag),
              ("git_blob", check_external_id)]
    for column, parse in checks:
        try:
            parsed[column] = parse(values.get(column, ""))
        except ValueError as exc:
            faults.append(problem(where, column, str(exc)))
    parsed["tree"] = slugify(values["tree"])
    if not parsed["tree"]:
        faults.append(problem(where, "tree", f"{values['tree']!r} is not a usable tree name"))
    if len(str(parsed.get("answer_index", ""))) > CLASS_KEY_MAX:
        faults.append(problem(where, "answer_index", f"more than {CLASS_KEY_MAX} digits"))
    if len(values["answer_text"]) > CLASS_NAME_MAX:
        faults.append(problem(where, "answer_text", f"{len(values['answer_text'])} characters, more than "
                                                    f"{CLASS_NAME_MAX}"))
    schema = f"gz-examples-{parsed['tree']}-q{parsed.get('question_index')}"
    if len(schema) > SCHEMA_NAME_MAX:
        faults.append(problem(where, "tree", f"makes the schema name {schema[:40]!r}... longer than {SCHEMA_NAME_MAX} "
                                             "characters"))
    if values["answer_kind"] not in ANSWER_KINDS:
        faults.append(problem(where, "answer_kind", f"{values['answer_kind']!r} is not one of "
                                                    f"{', '.join(sorted(ANSWER_KINDS))}"))
    for column, actual in (("width", info and info.width), ("height", info and info.height)):
        stated = values.get(column, "")
        if stated and actual and stated != str(actual):
            faults.append(problem(where, column, f"says {stated} but the image is {actual}"))
    return parsed, faults


def gz_examples_plan(*, dataset_name: str, path: Path, labels_csv: Path | None, schema_name: str | None,
                     progress: Progress) -> Plan:
    """Check an example set (folder + labels.csv) without writing anything.

    Raises:
        ImportFailed: for problems with the folder or the CSV as a whole; bad rows are listed in Plan.problems.
    """
    if schema_name:
        raise ImportFailed([f"--schema {schema_name!r} does not apply to gz-examples: every question gets its own "
                            "schema, gz-examples-<tree>-q<question_index>"])
    root = Path(path)
    if not root.is_dir():
        raise ImportFailed([f"{root}: no such folder"])
    labels_csv = Path(labels_csv) if labels_csv else root / "labels.csv"
    rows = list(csv_rows(labels_csv, required=REQUIRED))
    if not rows:
        raise ImportFailed([f"{labels_csv}: no rows"])

    plan = Plan(candidates=[], payloads=lambda: iter(()), schemas={},
                provenance=f"imported from {labels_csv.name}", problems=[])
    seen = SeenBefore(existing_dataset(dataset_name))
    by_blob: dict[str, Candidate] = {}
    sources: list[Path] = []
    max_pixels = settings.GALAXY_MAX_IMAGE_PIXELS
    for done, (number, values, fault) in enumerate(rows, start=1):
        progress(done, len(rows), "checking images")
        where = f"{labels_csv.name}, row {number}"
        faults = [fault] if fault else []
        source = info = None
        try:
            source = path_inside(root, values["file"])
            info = image_inspect(source, max_pixels=max_pixels)
        except (ValueError, OSError) as exc:  # ImageRejected is a ValueError
            # A path fault names the file itself; an image fault needs the file named in front.
            faults.append(problem(where, "file", str(exc) if source is None else f"{values['file']}: {exc}"))
        parsed, row_faults = _check_row(where, values, info)
        faults += row_faults
        blob = parsed.get("git_blob")
        candidate = by_blob.get(blob)
        schema = f"gz-examples-{parsed['tree']}-q{parsed.get('question_index')}"
        answer = str(parsed.get("answer_index"))
        if not faults and candidate is None:
            clash = seen.clash(blob, info.content_hash)
            if clash:
                faults.append(problem(where, "git_blob" if clash[0] == "id" else "file", clash[1]))
        elif not faults and candidate.content_hash != info.content_hash:
            faults.append(problem(where, "file", f"same git_blob as {candidate.where} but different image bytes"))
        elif not faults and values["answer_kind"] == "answer" and candidate.labels.get(schema, answer) != answer:
            faults.append(problem(where, "answer_index", f"galaxy {blob} is already the example of answer "
                                                         f"{candidate.labels[schema]} of this single-choice question"))
        if faults:
            plan.problems.extend(faults)
            continue
        title = f"{values['tree']}: {values['question_title']} — {values['question_text']}"
        plan.schemas.setdefault(schema, SchemaPlan(name=schema, fixed_keys=None, title=title[:TITLE_MAX]))
        plan.schemas[schema].classes.setdefault(answer, values["answer_text"] or answer)
        if candidate is None:
            seen.add(blob, info.content_hash, where)
            candidate = by_blob[blob] = Candidate(
                external_id=blob, where=where, filename=stored_filename(blob, info.suffix), width=info.width,
                height=info.height, content_hash=info.content_hash,
                metadata={"survey": values["survey"], "tree": values["tree"],
                          "is_processed_real": parsed["is_processed_real"], "examples": []},
            )
            plan.candidates.append(candidate)
            sources.append(source)
        candidate.metadata["examples"].append({
            "tree": values["tree"], "survey": values["survey"], "question_index": parsed["question_index"],
            "answer_index": parsed["answer_index"], "answer_kind": values["answer_kind"], "file": values["file"],
        })
        # A galaxy that exemplifies two answers of one checkbox question keeps the first as its label (one current
        # label per schema); the metadata's "examples" lists both.
        candidate.labels.setdefault(schema, answer)
    plan.payloads = lambda: (source.read_bytes() for source in sources)
    return plan
