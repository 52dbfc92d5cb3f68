"""Signs of a careless or automated volunteer, from their classifications alone: how fast they classify (pace) and
how often their answers match what the other volunteers of the same galaxy said (leave-one-out agreement).
Pure Python, no Django: a selector reads the rows, these functions turn them into figures an admin can sort by.

Agreement is leave-one-out: each answer is compared with the majority of the OTHER volunteers who answered the
same question of the same galaxy, so a volunteer never agrees with themselves, and a galaxy with few others says
nothing (``min_others``). A tie among the others counts as a match: there is no majority to disagree with. A
checkbox question is read box by box (ticked or not, against whether most others ticked it), over the boxes
anyone ticked, and scores the share of boxes that match.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

MIN_OTHERS = 2
BURST_WINDOW_S = 60.0


@dataclass(frozen=True)
class Pace:
    """How fast one volunteer classified.

    Attributes:
        classifications: how many timestamps were given.
        per_hour: classifications per hour between their first and last, (n - 1) / span; None with fewer than two.
            A span under a second counts as one second, so a burst at one instant is fast, not infinite.
        median_gap_s: the median of the seconds between consecutive classifications; None with fewer than two.
        busiest_minute: the most classifications within any window of ``window_s`` seconds (a burst).
    """

    classifications: int
    per_hour: float | None
    median_gap_s: float | None
    busiest_minute: int


def pace(timestamps: Iterable[float], *, window_s: float = BURST_WINDOW_S) -> Pace:
    """The pace of one volunteer from the times (seconds, any epoch) of their classifications, in any order.

    Raises:
        ValueError: when window_s is not positive.
    """
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s!r}")
    times = sorted(float(t) for t in timestamps)
    n = len(times)
    if n < 2:
        return Pace(n, None, None, n)
    gaps = sorted(later - earlier for earlier, later in zip(times, times[1:], strict=False))
    middle = len(gaps) // 2
    median = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
    busiest, start = 1, 0
    for end, time in enumerate(times):
        while time - times[start] >= window_s:
            start += 1
        busiest = max(busiest, end - start + 1)
    span = max(times[-1] - times[0], 1.0)
    return Pace(n, (n - 1) * 3600.0 / span, median, busiest)


@dataclass
class AgreementTally:
    """A volunteer's answers compared with the others' majority: on the root question and on every question.

    ``matches`` may be fractional: a checkbox question scores the share of its boxes that match.
    """

    root_compared: int = 0
    root_matches: float = 0.0
    compared: int = 0
    matches: float = 0.0

    def add(self, other: AgreementTally) -> None:
        self.root_compared += other.root_compared
        self.root_matches += other.root_matches
        self.compared += other.compared
        self.matches += other.matches

    @property
    def root_share(self) -> float | None:
        """Share of their root answers matching the others' majority; None when none could be compared."""
        return self.root_matches / self.root_compared if self.root_compared else None

    @property
    def share(self) -> float | None:
        """Share of all their answers matching the others' majority; None when none could be compared."""
        return self.matches / self.compared if self.compared else None


def leave_one_out_agreement(
    classifications: Sequence[tuple[Hashable, Mapping[str, str | list[str]], bool]],
    *,
    root: str,
    min_others: int = MIN_OTHERS,
) -> dict[Hashable, AgreementTally]:
    """Compare every classification of ONE galaxy (one tree) with the majority of the others.

    Args:
        classifications: (volunteer id, answers, counted) triples of one galaxy; answers maps question key -> answer
            key, or a list of keys for a checkbox question. Only counted classifications make the majority (an
            excluded volunteer is still compared with it, but never shapes it).
        root: the tree's first question, whose comparisons are also tallied apart.
        min_others: the fewest other counted volunteers who answered a question for it to be compared.

    Returns:
        volunteer id -> their tally on this galaxy (a volunteer with two classifications gets both added).

    Raises:
        ValueError: when min_others is below 1, or a triple is not (volunteer, answers mapping, counted).
    """
    if isinstance(min_others, bool) or not isinstance(min_others, int) or min_others < 1:
        raise ValueError(f"min_others must be an integer >= 1, got {min_others!r}")
    answered: Counter[str] = Counter()
    chosen: dict[str, Counter[str]] = {}
    for position, item in enumerate(classifications):
        if not isinstance(item, tuple | list) or len(item) != 3 or not isinstance(item[1], Mapping):
            raise ValueError(f"classification #{position}: expected (volunteer, answers mapping, counted), "
                             f"got {item!r}")
        _, answers, counted = item
        if counted:
            for question, given in answers.items():
                answered[question] += 1
                chosen.setdefault(question, Counter()).update(_as_list(given))
    tallies: dict[Hashable, AgreementTally] = {}
    for volunteer, answers, counted in classifications:
        tally = tallies.setdefault(volunteer, AgreementTally())
        for question, given in answers.items():
            own = _as_list(given)
            others_total = answered[question] - (1 if counted else 0)
            if others_total < min_others:
                continue
            others = Counter(chosen.get(question, Counter()))
            if counted:
                others.subtract(own)
            if isinstance(given, str):
                top = max(others.values())
                score = 1.0 if others[given] == top else 0.0
            else:
                score = _boxes_score(set(own), others, others_total)
            tally.compared += 1
            tally.matches += score
            if question == root:
                tally.root_compared += 1
                tally.root_matches += score
    return tallies


def _as_list(given: str | list[str]) -> list[str]:
    return [given] if isinstance(given, str) else list(given)


def _boxes_score(own: set[str], others: Counter[str], others_total: int) -> float:
    """Share of the boxes anyone ticked on which the volunteer sides with most others (ticked or not)."""
    boxes = own | {box for box, count in others.items() if count > 0}
    if not boxes:
        return 1.0  # nobody ticked anything: they all agree
    matches = 0
    for box in boxes:
        ticked_by_others = 2 * others[box]
        if ticked_by_others == others_total or (box in own) == (ticked_by_others > others_total):
            matches += 1
    return matches / len(boxes)
