"""Decision-tree vote arithmetic: walks -> counts -> fractions -> consensus class. Pure Python, no Django.

A tree is the plain dictionary of labeling/trees/*.json::

    {"name": "gz2", "questions": [
        {"key": "t01_smooth_or_features", "kind": "single",
         "answers": [{"key": "a01_smooth", "next": "t07_rounded"}, ...]},
        {"key": "odd", "kind": "multiple", "next": null, "answers": [{"key": "ring"}, ...]},
    ]}

The first question is the root. A single-choice answer names the next question (null ends the walk); a
multiple-choice question names one next question for whatever boxes are ticked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SINGLE = "single"
MULTIPLE = "multiple"


@dataclass(frozen=True)
class QuestionSpec:
    key: str
    kind: str
    answers: tuple[str, ...]
    next_by_answer: Mapping[str, str | None]
    next_for_multiple: str | None = None

    def next_question(self, answer: str | list[str]) -> str | None:
        if self.kind == MULTIPLE:
            return self.next_for_multiple
        return self.next_by_answer[answer]


@dataclass(frozen=True)
class TreeSpec:
    name: str
    questions: Mapping[str, QuestionSpec]
    order: tuple[str, ...]

    @property
    def root(self) -> str:
        return self.order[0]

    def question(self, key: str) -> QuestionSpec:
        try:
            return self.questions[key]
        except KeyError:
            raise ValueError(f"tree {self.name!r} has no question {key!r}") from None


def parse_tree(definition: Mapping) -> TreeSpec:
    """Check a tree definition and return its compact form.

    Raises:
        ValueError: naming the question or answer at fault: duplicate keys, an unknown next question, an unknown
            kind, a question with no answers, a cycle, or a question no walk can reach.
    """
    name = str(definition.get("name") or "")
    if not name:
        raise ValueError("the tree has no name")
    raw_questions = definition.get("questions") or []
    if not raw_questions:
        raise ValueError(f"tree {name!r} has no questions")
    questions: dict[str, QuestionSpec] = {}
    order: list[str] = []
    for position, raw in enumerate(raw_questions):
        key = raw.get("key")
        if not key or not isinstance(key, str):
            raise ValueError(f"tree {name!r}: question #{position + 1} has no key")
        if key in questions:
            raise ValueError(f"tree {name!r}: question key {key!r} appears twice")
        kind = raw.get("kind", SINGLE)
        if kind not in (SINGLE, MULTIPLE):
            raise ValueError(f"tree {name!r}: question {key!r} has kind {kind!r}; use 'single' or 'multiple'")
        answers = [a.get("key") for a in raw.get("answers") or []]
        if not answers:
            raise ValueError(f"tree {name!r}: question {key!r} has no answers")
        if any(not a or not isinstance(a, str) for a in answers):
            raise ValueError(f"tree {name!r}: question {key!r} has an answer without a key")
        if len(set(answers)) != len(answers):
            raise ValueError(f"tree {name!r}: question {key!r} repeats an answer key")
        next_by_answer = {a["key"]: a.get("next") for a in raw["answers"]} if kind == SINGLE else {}
        questions[key] = QuestionSpec(
            key=key,
            kind=kind,
            answers=tuple(answers),
            next_by_answer=next_by_answer,
            next_for_multiple=raw.get("next") if kind == MULTIPLE else None,
        )
        order.append(key)
    for question in questions.values():
        targets = (
            [question.next_for_multiple] if question.kind == MULTIPLE else list(question.next_by_answer.values())
        )
        for target in targets:
            if target is not None and target not in questions:
                raise ValueError(f"tree {name!r}: question {question.key!r} leads to unknown question {target!r}")
    spec = TreeSpec(name=name, questions=questions, order=tuple(order))
    _check_acyclic_and_reachable(spec)
    return spec


def _successors(question: QuestionSpec) -> set[str]:
    if question.kind == MULTIPLE:
        return {question.next_for_multiple} - {None}
    return set(question.next_by_answer.values()) - {None}


def _check_acyclic_and_reachable(spec: TreeSpec) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished

    def visit(key: str, path: list[str]) -> None:
        state[key] = 1
        for nxt in sorted(_successors(spec.questions[key])):
            if state.get(nxt) == 1:
                cycle = " -> ".join([*path, key, nxt])
                raise ValueError(f"tree {spec.name!r} has a cycle: {cycle}")
            if nxt not in state:
                visit(nxt, [*path, key])
        state[key] = 2

    visit(spec.root, [])
    unreachable = [key for key in spec.order if key not in state]
    if unreachable:
        raise ValueError(f"tree {spec.name!r}: no walk reaches {', '.join(unreachable)}")


def validate_walk(spec: TreeSpec, answers: Mapping[str, str | list[str]]) -> list[str]:
    """Check that a volunteer's answers follow the tree from its root; return the questions in walk order.

    A walk may stop early (a volunteer who left half-way) but may not answer a question it never reached.

    Raises:
        ValueError: naming the unknown question or answer, or the question that was answered out of the walk.
    """
    for key in answers:
        spec.question(key)
    walked: list[str] = []
    current: str | None = spec.root
    while current is not None and current in answers:
        question = spec.questions[current]
        given = answers[current]
        if question.kind == MULTIPLE:
            chosen = [given] if isinstance(given, str) else list(given)
            unknown = [a for a in chosen if a not in question.answers]
            if unknown:
                raise ValueError(f"question {current!r} has no answer {unknown[0]!r}")
            if len(set(chosen)) != len(chosen):
                raise ValueError(f"question {current!r}: an answer is ticked twice")
        else:
            if not isinstance(given, str):
                raise ValueError(f"question {current!r} takes one answer, not {given!r}")
            if given not in question.answers:
                raise ValueError(f"question {current!r} has no answer {given!r}")
        walked.append(current)
        current = question.next_question(given)
    stray = [key for key in answers if key not in walked]
    if stray:
        raise ValueError(f"question {stray[0]!r} was answered but the walk never reaches it")
    return walked


@dataclass
class QuestionVotes:
    """Votes on one question: counts per answer and how many volunteers answered it."""

    counts: dict[str, int]
    total: int

    def fractions(self) -> dict[str, float]:
        return fractions_from_counts(self.counts, self.total)


def count_votes(spec: TreeSpec, walks: Iterable[Mapping[str, str | list[str]]]) -> dict[str, QuestionVotes]:
    """Count the answers of many walks. Every question appears, with zero counts when nobody reached it.

    For a multiple-choice question the total is the number of volunteers who answered it, so its fractions say
    what share of them ticked each box and may sum to more than one.

    Raises:
        ValueError: when a walk does not follow the tree (see validate_walk).
    """
    votes = {key: QuestionVotes({a: 0 for a in spec.questions[key].answers}, 0) for key in spec.order}
    for walk in walks:
        for key in validate_walk(spec, walk):
            given = walk[key]
            chosen = [given] if isinstance(given, str) else list(given)
            entry = votes[key]
            entry.total += 1
            for answer in chosen:
                entry.counts[answer] += 1
    return votes


def fractions_from_counts(counts: Mapping[str, int], total: int | None = None) -> dict[str, float]:
    """Vote fractions of one question. ``total`` defaults to the sum of the counts; zero votes give zeros."""
    if any(c < 0 for c in counts.values()):
        raise ValueError(f"vote counts cannot be negative: {dict(counts)}")
    denominator = sum(counts.values()) if total is None else total
    if denominator == 0:
        return {answer: 0.0 for answer in counts}
    return {answer: count / denominator for answer, count in counts.items()}


def reach(votes: Mapping[str, QuestionVotes], spec: TreeSpec) -> dict[str, float]:
    """Share of the volunteers who answered the root question that also reached each question.

    Questions deep in the tree are answered by few volunteers; their fractions deserve less weight, and this is
    the weight (the "dependent question" weighting of Galaxy Zoo).
    """
    n = votes[spec.root].total
    return {key: (votes[key].total / n if n else 0.0) for key in spec.order}


def conditional_from_cumulative(
    cumulative: Mapping[str, Mapping[str, float]],
) -> dict[str, tuple[dict[str, float], float]]:
    """Turn Kaggle-style cumulative probabilities into per-question fractions and reach.

    In the Kaggle Galaxy Zoo layout (Class1.1 ... Class11.6) the answers of a later question are multiplied by the
    probability of the path leading to it, so they sum to that path's probability instead of one. Dividing by the
    sum recovers the fractions among the volunteers who answered; the sum itself is the question's reach.

    Raises:
        ValueError: for a negative value or a value above one.
    """
    result = {}
    for question, values in cumulative.items():
        for answer, value in values.items():
            if not 0.0 <= value <= 1.0 + 1e-6:
                raise ValueError(f"{question}/{answer}: {value} is not a probability")
        weight = sum(values.values())
        fractions = {a: (v / weight if weight > 0 else 0.0) for a, v in values.items()}
        result[question] = (fractions, min(weight, 1.0))
    return result


@dataclass(frozen=True)
class Consensus:
    """The outcome of a consensus rule for one galaxy.

    ``class_key`` is None when the galaxy has too few votes to be trusted; it is the rule's uncertain class when
    no class reached its thresholds.
    """

    class_key: str | None
    agreement: float
    n_votes: int


def consensus(
    fractions: Mapping[str, Mapping[str, float]],
    totals: Mapping[str, int | None],
    conditions: Mapping[str, list[Mapping]],
    *,
    root: str,
    default_threshold: float = 0.6,
    min_votes: int = 10,
    uncertain: str = "uncertain",
    fractions_by_kinds: Mapping[tuple[str, ...], Mapping[str, Mapping[str, float]]] | None = None,
) -> Consensus:
    """Map one galaxy's vote fractions to a class by thresholds along the tree.

    Args:
        fractions: question key -> answer key -> fraction of that question's votes.
        totals: question key -> number of volunteers who answered it (None when unknown, as in Kaggle tables).
        conditions: class key -> list of {"question", "answers", optional "threshold", optional "min_votes"}.
            A class matches when, for every condition, the summed fractions of the listed answers reach the
            threshold (and the question has at least ``min_votes`` votes, when the condition asks for some).
        root: the tree's first question; its total is the galaxy's number of volunteers.
        default_threshold: used by conditions without their own.
        min_votes: below this many volunteers on the root question, no class at all (class_key None).
        uncertain: the class key returned when no class matches.
        fractions_by_kinds: for conditions that name their own kinds of fractions ({"fractions": ["raw"]}):
            that tuple of kinds -> question key -> answer key -> fraction (see mlcore.votes.fractions).

    Returns:
        The matching class with the highest agreement (the weakest summed fraction along its path), or the
        uncertain class with the best agreement any class reached.
    """
    n_votes = totals.get(root)
    if n_votes is not None and n_votes < min_votes:
        return Consensus(None, 0.0, n_votes)
    best_key, best_agreement, best_partial = None, -1.0, 0.0
    for class_key, class_conditions in conditions.items():
        agreement = 1.0
        matched = True
        for condition in class_conditions:
            question = condition["question"]
            own = condition.get("fractions")
            if own and fractions_by_kinds is not None:
                kinds = (own,) if isinstance(own, str) else tuple(own)
                shares = fractions_by_kinds.get(kinds, {}).get(question) or {}
            else:
                shares = fractions.get(question) or {}
            value = sum(shares.get(answer, 0.0) for answer in condition["answers"])
            agreement = min(agreement, value)
            needed_votes = condition.get("min_votes")
            total = totals.get(question)
            if needed_votes is not None and total is not None and total < needed_votes:
                matched = False
            if value < condition.get("threshold", default_threshold):
                matched = False
        if matched and agreement > best_agreement:
            best_key, best_agreement = class_key, agreement
        elif not matched:
            best_partial = max(best_partial, agreement)
    if best_key is None:
        return Consensus(uncertain, best_partial, n_votes or 0)
    return Consensus(best_key, best_agreement, n_votes or 0)
