"""The admin's page of volunteers: each volunteer's (or anonymous session's) speed and agreement with the others,
to spot bots and careless or contrarian classifiers, and the volunteers excluded.

One pass over the classifications in scope, read by a single query ordered by galaxy: each galaxy's rows give
every volunteer's leave-one-out agreement (mlcore.votes.screening), and each volunteer's timestamps their pace.
With the roots of the trees, the exclusions and the weights that makes four queries, however many volunteers.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from labeling.models import (
    Dataset,
    DecisionTree,
    Question,
    VolunteerClassification,
    VolunteerExclusion,
    VolunteerWeight,
)
from labeling.models.screening import USER_PREFIX, volunteer_key
from mlcore.votes.screening import AgreementTally, Pace, leave_one_out_agreement, pace

READ_CHUNK = 5000


@dataclass
class VolunteerRow:
    """One volunteer in scope. ``pace`` reads only the classifications made here (imported and simulated ones carry
    the time they were stored, not the time they were made); None when they made none here."""

    key: str
    username: str = ""
    classifications: int = 0
    web: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    pace: Pace | None = None
    agreement: AgreementTally = field(default_factory=AgreementTally)
    weight: float | None = None
    kappa: float | None = None
    exclusion: VolunteerExclusion | None = None

    @property
    def kind(self) -> str:
        if self.key.startswith(USER_PREFIX):
            return "account"
        return "session" if self.key.startswith("session:") else "imported"

    @property
    def name(self) -> str:
        """What the page shows: the account's user name, else the key (a session key is cut short)."""
        if self.username:
            return self.username
        return self.key[:20] + "…" if self.kind == "session" and len(self.key) > 21 else self.key


def _value(attribute: Callable[[VolunteerRow], object]) -> Callable[[VolunteerRow], object]:
    def read(row: VolunteerRow):
        try:
            return attribute(row)
        except AttributeError:  # no pace: nothing to sort by
            return None
    return read


# Sort key -> (column heading, the value sorted by). "-key" sorts descending; rows without a value come last.
SORTS: dict[str, tuple[str, Callable[[VolunteerRow], object]]] = {
    "classifications": ("Classifications", _value(lambda row: row.classifications)),
    "per_hour": ("Per hour", _value(lambda row: row.pace.per_hour)),
    "median_gap": ("Median s between", _value(lambda row: row.pace.median_gap_s)),
    "burst": ("Busiest minute", _value(lambda row: row.pace.busiest_minute)),
    "root_agreement": ("Agree on first question", _value(lambda row: row.agreement.root_share)),
    "agreement": ("Agree on all questions", _value(lambda row: row.agreement.share)),
    "weight": ("Weight", _value(lambda row: row.weight)),
    "last": ("Last seen", _value(lambda row: row.last_at)),
}
DEFAULT_SORT = "median_gap"  # fastest first


@dataclass
class VolunteerReport:
    """Volunteers counted (sorted), volunteers excluded now (with their figures when they classified in scope),
    and exclusions ended."""

    rows: list[VolunteerRow]
    excluded: list[VolunteerRow]
    ended: list[VolunteerExclusion]


def volunteer_report(*, dataset: Dataset | None = None, tree: DecisionTree | None = None,
                     sort: str = DEFAULT_SORT, min_classifications: int = 1) -> VolunteerReport:
    """Every volunteer with classifications in scope (a dataset, a tree, or all), with pace and agreement.

    Args:
        dataset, tree: limit to the classifications of this dataset's galaxies, of this tree; None: all.
        sort: a key of SORTS, "-" in front for descending.
        min_classifications: leave out volunteers with fewer classifications in scope.

    Raises:
        ValueError: for a sort that is not a key of SORTS.
    """
    descending = sort.startswith("-")
    if sort.lstrip("-") not in SORTS:
        raise ValueError(f"sort by one of {', '.join(SORTS)}, not {sort!r}")
    roots = _roots(tree)
    exclusions = list(VolunteerExclusion.objects.select_related("excluded_by", "included_by"))
    in_force = {exclusion.volunteer: exclusion for exclusion in exclusions if exclusion.in_force}

    rows = VolunteerClassification.objects.all()
    if dataset is not None:
        rows = rows.filter(galaxy__dataset=dataset)
    if tree is not None:
        rows = rows.filter(tree=tree)
    by_key: dict[str, VolunteerRow] = {}
    times: dict[str, list[float]] = defaultdict(list)
    galaxy: list[tuple[str, dict, bool]] = []
    current = None
    for tree_id, galaxy_id, volunteer_id, user_id, username, source, created_at, answers in rows.order_by(
            "tree_id", "galaxy_id").values_list("tree_id", "galaxy_id", "volunteer_id", "user_id", "user__username",
                                                "source", "created_at", "answers").iterator(chunk_size=READ_CHUNK):
        if (tree_id, galaxy_id) != current:
            _tally(by_key, galaxy, roots.get(current[0]) if current else None)
            galaxy, current = [], (tree_id, galaxy_id)
        key = volunteer_key(volunteer_id, user_id)
        if not key:  # nobody to list, but their answers are part of the others' majority
            galaxy.append(("", answers, True))
            continue
        row = by_key.get(key)
        if row is None:
            # A user name only where the key is the account's: an imported id sent by a signed-in client is not them.
            own_account = username is not None and key == f"{USER_PREFIX}{user_id}"
            row = by_key[key] = VolunteerRow(key, username=username if own_account else "")
        row.classifications += 1
        row.first_at = min(row.first_at or created_at, created_at)
        row.last_at = max(row.last_at or created_at, created_at)
        if source == VolunteerClassification.Source.WEB:
            row.web += 1
            times[key].append(created_at.timestamp())
        galaxy.append((key, answers, key not in in_force))
    if current:
        _tally(by_key, galaxy, roots.get(current[0]))

    for key, stamps in times.items():
        by_key[key].pace = pace(stamps)
    _weights(by_key, dataset, tree)
    listed, excluded = [], []
    for row in by_key.values():
        row.exclusion = in_force.get(row.key)
        if row.exclusion is not None:
            excluded.append(row)
        elif row.classifications >= min_classifications:
            listed.append(row)
    # Excluded volunteers with nothing in scope are listed all the same: the list is of every exclusion in force.
    excluded += [VolunteerRow(key, exclusion=exclusion) for key, exclusion in in_force.items() if key not in by_key]
    excluded.sort(key=lambda row: (row.exclusion.excluded_at, row.key), reverse=True)
    return VolunteerReport(rows=_sorted(listed, SORTS[sort.lstrip("-")][1], descending), excluded=excluded,
                           ended=[exclusion for exclusion in exclusions if not exclusion.in_force])


def _roots(tree: DecisionTree | None) -> dict[int, str]:
    """tree id -> the key of its first question."""
    questions = Question.objects.order_by("tree_id", "-order", "-pk")
    if tree is not None:
        questions = questions.filter(tree=tree)
    return dict(questions.values_list("tree_id", "key"))  # the last one of each tree wins: its lowest order


def _tally(by_key: dict[str, VolunteerRow], galaxy: list[tuple[str, dict, bool]], root: str | None) -> None:
    if not galaxy:
        return
    for key, tally in leave_one_out_agreement(galaxy, root=root or "").items():
        if key:
            by_key[key].agreement.add(tally)


def _weights(by_key: dict[str, VolunteerRow], dataset: Dataset | None, tree: DecisionTree | None) -> None:
    """The weights of the last weighting in scope; where a volunteer was weighted on several datasets or trees,
    the lowest (the one that should catch the eye)."""
    weights = VolunteerWeight.objects.all()
    if dataset is not None:
        weights = weights.filter(dataset=dataset)
    if tree is not None:
        weights = weights.filter(tree=tree)
    for volunteer, weight, kappa in weights.values_list("volunteer", "weight", "kappa").iterator(
            chunk_size=READ_CHUNK):
        row = by_key.get(volunteer)
        if row is not None and (row.weight is None or weight < row.weight):
            row.weight, row.kappa = weight, kappa


def _sorted(rows: list[VolunteerRow], value: Callable[[VolunteerRow], object], descending: bool) -> list[VolunteerRow]:
    rows = sorted(rows, key=lambda row: row.key)  # a fixed order among equals
    present = [row for row in rows if value(row) is not None]
    return sorted(present, key=value, reverse=descending) + [row for row in rows if value(row) is None]
