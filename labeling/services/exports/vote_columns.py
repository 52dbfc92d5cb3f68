"""The columns of each Galaxy Zoo vote layout, named exactly as labeling/services/imports/vote_tables.py reads them, and
one galaxy's stored vote summaries turned into a row of them. Pure: plain tree definitions and values in, rows out.

- gz2-table: objid, ra, dec, then per answer tNN_<question>_aNN_<answer>_count and the other published columns
  (_weight, _fraction, _weighted_fraction, _debiased, _flag...).
- gz-decals: iauname, ra, dec, then per question <question>_total-votes and per answer <question>_<answer> (the
  count), <question>_<answer>_fraction and the other published columns (_debiased...).
- gz2-kaggle: GalaxyID, then ClassN.M per answer: the cumulative probability, the answer's fraction times the share
  of volunteers who reached its question (the inverse of mlcore.votes.tree.conditional_from_cumulative).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from labeling.services.imports.vote_tables import ID_COLUMNS

# Published GZ2 tables give each answer's columns in this order; suffixes not named here follow, alphabetically.
SUFFIX_ORDER = ("weight", "fraction", "weighted_fraction", "debiased", "flag")
FRACTION = "fraction"


@dataclass(frozen=True)
class Stored:
    """One VoteSummary's values."""

    counts: dict | None
    total: int | None
    fractions: dict
    reach: float | None
    extra: dict


@dataclass
class _Question:
    """One question's columns: (column, answer) pairs of its counts or Kaggle probabilities, (column, suffix,
    answer) of its other published columns, and its total's column (GZ DECaLS)."""

    key: str
    total: str | None = None
    counts: list[tuple[str, str]] = field(default_factory=list)
    cumulative: list[tuple[str, str]] = field(default_factory=list)
    published: list[tuple[str, str, str]] = field(default_factory=list)


def _suffix_order(suffix: str) -> tuple:
    return (SUFFIX_ORDER.index(suffix), "") if suffix in SUFFIX_ORDER else (len(SUFFIX_ORDER), suffix)


class VoteColumns:
    """The columns of one layout for one tree, and rows of them.

    Args:
        layout: "gz2-table", "gz-decals" or "gz2-kaggle".
        tree: the tree's definition (DecisionTree.as_definition or a labeling/trees file).
        extras: question key -> suffix -> answers that have that published column somewhere in the export.
            A "fraction" column is written for every answer whatever it holds (see ``row``).
        coordinates: whether to write ra and dec (never for Kaggle, whose table has none).
    """

    def __init__(self, *, layout: str, tree: dict, extras: Mapping[str, Mapping[str, set[str]]],
                 coordinates: bool):
        self.id_column = ID_COLUMNS[layout][0]
        self.root = tree["questions"][0]["key"]  # the first question, answered by every volunteer
        self.coordinates = coordinates and layout != "gz2-kaggle"
        self.columns = [self.id_column, *(["ra", "dec"] if self.coordinates else [])]
        self.questions: list[_Question] = []
        for raw in tree["questions"]:
            question = _Question(raw["key"])
            self.questions.append(question)
            if layout == "gz2-kaggle":
                question.cumulative = [(answer["aliases"]["kaggle"], answer["key"]) for answer in raw["answers"]]
                self.columns += [column for column, _ in question.cumulative]
                continue
            published = extras.get(question.key, {})
            suffixes = sorted({FRACTION, *published}, key=_suffix_order)
            if layout == "gz-decals":
                question.total = f"{question.key}_total-votes"
                self.columns.append(question.total)
            for answer in (raw_answer["key"] for raw_answer in raw["answers"]):
                count = f"{question.key}_{answer}" + ("_count" if layout == "gz2-table" else "")
                question.counts.append((count, answer))
                self.columns.append(count)
                for suffix in suffixes:
                    if suffix == FRACTION or answer in published[suffix]:
                        question.published.append((f"{question.key}_{answer}_{suffix}", suffix, answer))
                        self.columns.append(question.published[-1][0])

    def row(self, external_id: str, ra: float | None, dec: float | None, summaries: Mapping[str, Stored]) -> dict:
        """One galaxy's row, its keys in column order. A question without a summary has empty cells (GZ DECaLS: not
        in the galaxy's workflow). The fraction column holds the published fraction where the summary kept one (in
        extra, as the importer stores it), else the fraction of the counts; other published columns are empty where
        the summary kept none."""
        row = dict.fromkeys(self.columns)
        row[self.id_column] = external_id
        if self.coordinates:
            row["ra"], row["dec"] = ra, dec
        for question in self.questions:
            summary = summaries.get(question.key)
            if summary is None:
                continue
            if question.total is not None:
                row[question.total] = summary.total
            counts, fractions, reach = summary.counts or {}, summary.fractions, summary.reach
            for column, answer in question.counts:
                row[column] = counts.get(answer)
            for column, answer in question.cumulative:
                share = fractions.get(answer)
                row[column] = None if share is None or reach is None else share * reach
            for column, suffix, answer in question.published:
                values = summary.extra.get(suffix)
                if isinstance(values, dict) and answer in values:
                    row[column] = values[answer]
                elif suffix == FRACTION:
                    row[column] = fractions.get(answer)
        return row
