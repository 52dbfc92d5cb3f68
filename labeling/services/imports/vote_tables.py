"""Read volunteer vote catalogues (GZ2 tables, Kaggle Galaxy Zoo solutions, GZ DECaLS catalogues) into checked
rows, one per galaxy, each with the vote summaries to store. Reads only; labeling/services/imports/votes.py writes.

A layout is built from a file's header and the decision tree: it knows which column holds what and reports
header faults (missing, repeated, unknown columns). It then turns each data row into a VoteRow, or into problem
lines naming the file, the row (1-based data row, and the galaxy's id) and the column.
"""

import csv
import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from labeling.services.imports.common import NUL, NUL_MESSAGE, check_external_id, parse_coordinate, problem
from labeling.services.imports.reports import ImportFailed
from labeling.services.imports.vote_cells import Bulk, Cells, Group, metadata_value, parse_count
from mlcore.votes.tree import MULTIPLE, conditional_from_cumulative, fractions_from_counts, parse_tree

ID_COLUMNS = {
    "gz2-table": ("objid", "dr7objid", "id"),
    "gz2-kaggle": ("GalaxyID",),
    "gz-decals": ("iauname", "id_str", "objid", "id"),
}
FRACTION_SUFFIXES = {"fraction", "weighted_fraction", "debiased"}
GZ2_VOTE_COLUMN = re.compile(r"t\d\d_")
KAGGLE_VOTE_COLUMN = re.compile(r"Class\d")


@dataclass
class Summary:
    """One VoteSummary to store: a question's votes for one galaxy."""

    question: str
    counts: dict[str, int] | None
    total: int | None
    fractions: dict[str, float]
    reach: float | None
    extra: dict = field(default_factory=dict)


@dataclass
class VoteRow:
    number: int
    external_id: str
    ra: float | None
    dec: float | None
    metadata: dict
    summaries: list[Summary]


@dataclass
class QuestionColumns:
    """Where one question's columns are: count (or cumulative probability) per answer, other per-answer columns
    by suffix, and the published total when there is one."""

    key: str
    kind: str
    answers: dict[str, int] = field(default_factory=dict)
    extras: dict[str, dict[str, int]] = field(default_factory=dict)
    total: int | None = None
    # Set once the header is read: the answers' group, and (suffix, is a fraction, group) per other suffix.
    counts: Group | None = None
    others: list[tuple[str, bool, Group]] = field(default_factory=list)


def read_table(path: Path) -> Iterator[list[str]]:
    """The rows of a CSV file, or of a gzip-compressed one (name ending .gz), header first, streamed.

    Raises:
        ImportFailed: for a missing, unreadable, truncated or non-UTF-8 file, as the rows are read.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            yield from csv.reader(handle)
    except FileNotFoundError:
        raise ImportFailed([f"{path}: no such file"]) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ImportFailed([f"{path.name}: not a readable gzip file ({exc or 'truncated'})"]) from None
    except UnicodeDecodeError as exc:
        raise ImportFailed([f"{path.name}: not UTF-8 text ({exc})"]) from None
    except csv.Error as exc:
        raise ImportFailed([f"{path.name}: not a readable CSV file ({exc})"]) from None
    except OSError as exc:
        raise ImportFailed([f"{path}: cannot be read ({exc.strerror or exc})"]) from None


class Layout:
    """Which column of one file holds what, for one format and tree. ``problems`` lists the header's faults."""

    def __init__(self, *, fmt: str, header: list[str], tree: dict, file_name: str):
        self.fmt, self.file = fmt, file_name
        self.header = [column.strip() for column in header]
        self.spec = parse_tree(tree)
        self.problems: list[str] = []
        self.questions: dict[str, QuestionColumns] = {}
        where = f"{file_name}, header"
        for column in sorted({c for c in self.header if self.header.count(c) > 1}):
            self.problems.append(problem(where, column, "column appears twice"))
        self.problems += [problem(where, column, NUL_MESSAGE) for column in self.header if NUL in column]
        ids = [column for column in ID_COLUMNS[fmt] if column in self.header]
        self.id_column = ids[0] if ids else None
        self.id_index = self.header.index(self.id_column) if ids else -1
        if self.id_column is None:
            wanted = " or ".join(repr(c) for c in ID_COLUMNS[fmt])
            self.problems.append(f"{where}: required id column is missing (one of {wanted})")
        self.coordinates: dict[str, int] = {}
        self.metadata: dict[str, int] = {}
        classify = {"gz2-table": self._gz2_column, "gz2-kaggle": self._kaggle_column,
                    "gz-decals": self._decals_column}[fmt]
        self.kaggle_aliases = {a["aliases"]["kaggle"]: (q["key"], a["key"]) for q in tree["questions"]
                               for a in q["answers"] if (a.get("aliases") or {}).get("kaggle")}
        self.kaggle_questions = {str(q.get("aliases", {}).get("kaggle")) for q in tree["questions"]}
        for index, column in enumerate(self.header):
            if column == self.id_column:
                continue
            try:
                if not classify(column, index):
                    target = self.coordinates if column in ("ra", "dec") else self.metadata
                    target[column] = index
            except ValueError as exc:
                self.problems.append(problem(where, column, str(exc)))
        self._check_required(where)
        self._group_cells()

    def _group_cells(self) -> None:
        """Groups of cells per question and suffix, and one bulk reader per kind of cell for the whole row."""
        by_kind: dict[str, dict[tuple[str, str], Group]] = {"count": {}, "fraction": {}, "number": {}}
        for key, columns in self.questions.items():
            if not columns.answers:
                continue
            columns.counts = Group.of(columns.answers)
            by_kind["fraction" if self.fmt == "gz2-kaggle" else "count"][key, ""] = columns.counts
            for suffix, by_answer in columns.extras.items():
                is_fraction = suffix in FRACTION_SUFFIXES
                columns.others.append((suffix, is_fraction, Group.of(by_answer)))
                by_kind["fraction" if is_fraction else "number"][key, suffix] = columns.others[-1][2]
        self.bulk = [Bulk(groups, kind) for kind, groups in by_kind.items() if groups]
        # Whether converting a row's cells checks all there is to check (GZ DECaLS rows also need their totals and
        # missing questions looked at; a multiple-choice question its total).
        self.conversion_checks_all = self.fmt == "gz2-kaggle" or (
            self.fmt == "gz2-table" and all(c.kind != MULTIPLE for c in self.questions.values()))

    def _question(self, key: str) -> QuestionColumns:
        if key not in self.questions:
            self.questions[key] = QuestionColumns(key=key, kind=self.spec.questions[key].kind)
        return self.questions[key]

    def _gz2_column(self, column: str, index: int) -> bool:
        """tNN_<question>_aNN_<answer>_<suffix>; False for a column that is not a vote column."""
        if not GZ2_VOTE_COLUMN.match(column):
            return False
        question = max((q for q in self.spec.order if column.startswith(q + "_")), key=len, default=None)
        if question is None:
            raise ValueError(f"unknown question: no question of tree {self.spec.name!r} starts this column")
        rest = column[len(question) + 1:]
        answer = max((a for a in self.spec.questions[question].answers if rest.startswith(a + "_")), key=len,
                     default=None)
        if answer is None or not rest[len(answer) + 1:]:
            raise ValueError(f"unknown answer: question {question!r} has no answer column {rest!r}")
        self._place(question, answer, rest[len(answer) + 1:], index, count_suffix="count")
        return True

    def _decals_column(self, column: str, index: int) -> bool:
        """<question>_<answer> (count), <question>_<answer>_<suffix>, <question>_total-votes."""
        prefix, _, rest = column.partition("_")
        if prefix not in self.spec.questions:
            if "-" in prefix:
                raise ValueError(f"unknown question {prefix!r}: not a question of tree {self.spec.name!r}")
            return False
        if rest == "total-votes":
            self._question(prefix).total = index
            return True
        answer, _, suffix = rest.partition("_")
        if answer not in self.spec.questions[prefix].answers:
            raise ValueError(f"unknown answer {answer!r} to question {prefix!r}")
        self._place(prefix, answer, suffix, index, count_suffix="")
        return True

    def _kaggle_column(self, column: str, index: int) -> bool:
        """ClassN.M: a cumulative probability (see mlcore.votes.tree.conditional_from_cumulative)."""
        if not KAGGLE_VOTE_COLUMN.match(column):
            return False
        if column not in self.kaggle_aliases:
            if column.split(".")[0] in self.kaggle_questions:
                raise ValueError(f"unknown answer: no answer of tree {self.spec.name!r} is called {column!r}")
            raise ValueError(f"unknown question: no question of tree {self.spec.name!r} is called "
                             f"{column.split('.')[0]!r}")
        question, answer = self.kaggle_aliases[column]
        self._question(question).answers[answer] = index
        return True

    def _place(self, question: str, answer: str, suffix: str, index: int, *, count_suffix: str) -> None:
        columns = self._question(question)
        if suffix == count_suffix:
            columns.answers[answer] = index
        else:
            columns.extras.setdefault(suffix, {})[answer] = index

    def _check_required(self, where: str) -> None:
        """Every answer's count (Kaggle: probability) column; GZ DECaLS only for the questions in the file."""
        if self.fmt == "gz2-kaggle":
            missing = [alias for alias in self.kaggle_aliases if alias not in self.header]
        else:
            suffix = "_count" if self.fmt == "gz2-table" else ""
            keys = self.spec.order if self.fmt == "gz2-table" else [k for k in self.spec.order if k in self.questions]
            missing = [f"{key}_{answer}{suffix}" for key in keys for answer in self.spec.questions[key].answers
                       if answer not in self._question(key).answers]
            if self.fmt == "gz-decals" and not keys:
                missing = [f"{key}_{answer}" for key in self.spec.order for answer in self.spec.questions[key].answers]
        self.problems += [problem(where, column, "required column is missing") for column in missing]

    def parse(self, number: int, fields: list[str], *, build: bool = True) -> tuple[VoteRow | None, list[str]]:
        """One data row (``number`` counts data rows from 1) as a VoteRow, or None and its problem lines.

        With ``build`` False the row is only checked: its VoteRow has no summaries.
        """
        if len(fields) < len(self.header):
            fields = fields + [""] * (len(self.header) - len(fields))
        where = f"{self.file}, row {number}"
        problems: list[str] = []
        try:
            external_id = check_external_id(fields[self.id_index].strip())
            where = f"{where} (id {external_id!r})"
        except ValueError as exc:
            problems.append(problem(where, self.id_column, str(exc)))
        if len(fields) > len(self.header):
            problems.append(f"{where}: {len(fields)} fields but the header has {len(self.header)}")
        if NUL in "".join(fields):  # one C-speed scan of the row; PostgreSQL cannot store a NUL in metadata
            problems += [problem(where, column, NUL_MESSAGE) for column, text in zip(self.header, fields, strict=False)
                         if NUL in text]
        cells = Cells(where, self.header, fields, problems)
        converted = [reader.convert(fields) for reader in self.bulk]
        # A well-formed GZ2 or Kaggle row is fully checked by the conversion; building its summaries can wait.
        settled = not build and self.conversion_checks_all and None not in converted
        for reader, values in zip(self.bulk, converted, strict=True):
            if values is not None and not settled:
                cells.known.update(reader.split(values))
        coordinates = {name: cells.read(index, lambda text, c=name: parse_coordinate(text.strip(), column=c))
                       for name, index in self.coordinates.items()}
        metadata = {column: metadata_value(fields[index].strip()) for column, index in self.metadata.items()}
        summaries = [] if settled else (self._kaggle_summaries if self.fmt == "gz2-kaggle" else
                                        self._count_summaries)(cells)
        if problems:
            return None, problems
        return VoteRow(number, external_id, coordinates.get("ra"), coordinates.get("dec"), metadata, summaries), []

    def _count_summaries(self, cells: "Cells") -> list[Summary]:
        summaries: dict[str, Summary] = {}
        for key in self.spec.order:
            columns = self.questions.get(key)
            if columns is None:
                continue
            faults = len(cells.problems)
            counts = cells.known.get((key, "")) or cells.counts(columns.counts)
            total = cells.read(columns.total, parse_count) if columns.total is not None else None
            if len(cells.problems) > faults:
                continue  # a bad count, already named
            absent = [answer for answer, count in counts.items() if count is None]
            if len(absent) == len(counts) and self.fmt == "gz-decals":
                continue  # a question that was not in this galaxy's workflow
            for answer in absent:
                cells.fault(columns.answers[answer], "no vote count" + (
                    " while other answers of the question have one" if len(absent) < len(counts) else ""))
            if absent:
                continue
            summed = sum(counts.values())
            if columns.kind == MULTIPLE:
                # Ticked boxes do not add up to the volunteers who answered: only the published total says so.
                if total is None:
                    cells.fault(None, "a multiple-choice question needs its total votes", column=f"{key}_total-votes")
                    continue
            elif total is not None and total != summed:
                cells.fault(columns.total, f"{total} votes in total but the answer counts add up to {summed}")
            total = summed if total is None else total
            extra = {}
            for suffix, is_fraction, group in columns.others:
                extra[suffix] = cells.known.get((key, suffix)) or (cells.fractions if is_fraction else
                                                                   cells.numbers)(group)
            summaries[key] = Summary(key, counts, total, fractions_from_counts(counts, total), None, extra)
        root = summaries.get(self.spec.root)
        for summary in summaries.values():
            # Reach: the share of the galaxy's volunteers (those who answered the first question) who got here.
            if root is not None:
                summary.reach = summary.total / root.total if root.total else 0.0
        return list(summaries.values())

    def _kaggle_summaries(self, cells: "Cells") -> list[Summary]:
        cumulative = {}
        for key in self.spec.order:
            columns = self.questions[key]
            values = cells.known.get((key, "")) or cells.fractions(columns.counts)
            for answer, value in values.items():
                if value is None:
                    cells.fault(columns.answers[answer], "no probability")
            cumulative[key] = {answer: value or 0.0 for answer, value in values.items()}
        converted = conditional_from_cumulative(cumulative)
        return [Summary(key, None, None, fractions, reach) for key, (fractions, reach) in converted.items()]
