"""Volunteer consistency weighting of Galaxy Zoo 2 (Willett et al. 2013, MNRAS 435, 2835, section 3.3).

Each question a volunteer answers is compared with the vote fractions of that galaxy and question. For a question
with N possible answers, the answer scores (Willett et al., equations 1-2)::

    kappa_task = (1 / N) * sum over answers i of ( f_i      if the volunteer chose i
                                                   1 - f_i  otherwise )

so agreeing with the majority scores high and a lone dissent scores low: with fractions (0.7, 0.2, 0.1) choosing
the first answer scores 0.8, the second 0.467, the third 0.4 (the paper's worked example). For a single choice
this is (N - 2 + 2 * f_chosen) / N: the fraction of the chosen answer itself only when N is 2. A volunteer's
consistency kappa is the mean of kappa_task over every question they answered on every galaxy, and their weight is

    w = min(1, (kappa / 0.6) ** 8.5)            (equation 3)

Fractions are then recomputed with the weights and the kappas from those; GZ2 did this three times in all.

Choices the paper leaves open, made here:

- Checkbox (multiple-choice) questions use the same formula, each box read as a yes/no: a ticked box scores its
  fraction (the weighted share of volunteers who ticked it), an unticked box one minus it. So every ticked answer
  counts, and so does every box left empty; a volunteer who ticked nothing still gets a score.
- A volunteer's own vote is part of the fractions they are compared with, as in the paper; a volunteer with a
  single classification gets a weight all the same (alone on a galaxy, they agree with themselves: kappa 1).
- A volunteer who classified the same galaxy more than once counts with their last classification only (GZ2
  section 3.1).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from mlcore.votes.tree import QuestionVotes, TreeSpec, count_votes, validate_walk

Answers = Mapping[str, str | list[str]]

GZ2_THRESHOLD = 0.6
GZ2_EXPONENT = 8.5


@dataclass(frozen=True)
class VolunteerWeights:
    """The outcome of volunteer_weights.

    Attributes:
        weights: volunteer id -> weight in [0, 1].
        kappa: volunteer id -> consistency in [0, 1] from the last iteration; NaN for a volunteer whose
            classifications answered no question (their weight is 1, though they cast no vote it could scale).
        iterations: how many times the weights were computed (1 = from unweighted fractions only).
        converged: whether the last iteration changed no weight by more than the tolerance.
    """

    weights: dict[str, float]
    kappa: dict[str, float]
    iterations: int
    converged: bool


@dataclass
class WeightedQuestionVotes(QuestionVotes):
    """Weighted votes on one question: summed weights per answer and over the volunteers who answered it.

    A QuestionVotes with float counts, so ``fractions()`` and ``mlcore.votes.tree.reach`` work on it unchanged.
    """

    counts: dict[str, float]
    total: float


def volunteer_weights(
    spec: TreeSpec,
    classifications: Iterable[tuple[str, int, Answers]],
    *,
    threshold: float = GZ2_THRESHOLD,
    exponent: float = GZ2_EXPONENT,
    max_iter: int = 20,
    tol: float = 1e-3,
) -> VolunteerWeights:
    """Weight every volunteer by their consistency with the others, iterating as Galaxy Zoo 2 did.

    Iteration k computes fractions with the weights of iteration k - 1 (all ones at first), kappas from those
    fractions and weights from the kappas. It stops once no weight moved by more than ``tol``, or after
    ``max_iter`` iterations; ``max_iter=3, tol=0`` repeats the paper's three passes. Volunteers with few
    classifications converge slowest (their own vote moves the fractions they are judged by), so expect several
    iterations to a tolerance of 1e-3; each is a handful of numpy passes, a fraction of a second per million.

    Args:
        spec: the decision tree (mlcore.votes.tree.parse_tree).
        classifications: (volunteer id, galaxy id, answers) triples; answers maps question key -> answer key, or
            a list of answer keys for a checkbox question, and must follow the tree (mlcore.votes.tree.validate_walk).
        threshold: kappa at and above which a volunteer keeps full weight (GZ2: 0.6).
        exponent: how steeply the weight falls below the threshold (GZ2: 8.5).
        max_iter: the most iterations to run, >= 1.
        tol: the largest change of any weight between iterations that counts as converged, >= 0.

    Returns:
        VolunteerWeights with a weight and a kappa for every volunteer in the input.

    Raises:
        ValueError: for no classifications, a triple that is not (volunteer, galaxy, answers mapping), a walk that
            does not follow the tree (naming the classification and the question or answer), or a threshold,
            exponent, max_iter or tol out of range.
    """
    _check_settings(threshold=threshold, exponent=exponent, max_iter=max_iter, tol=tol)
    data = _encode(spec, classifications)
    weights = np.ones(len(data.volunteers))
    converged, iterations = False, 0
    while iterations < max_iter and not converged:
        iterations += 1
        kappa = _kappa(data, weights)
        new_weights = np.minimum(1.0, (kappa / threshold) ** exponent)
        new_weights[np.isnan(kappa)] = 1.0
        change = float(np.max(np.abs(new_weights - weights)))
        weights = new_weights
        converged = change <= tol
    return VolunteerWeights(
        weights=dict(zip(data.volunteers, weights.tolist(), strict=True)),
        kappa=dict(zip(data.volunteers, kappa.tolist(), strict=True)),
        iterations=iterations,
        converged=converged,
    )


def weighted_galaxy_votes(
    spec: TreeSpec,
    classifications: Iterable[tuple[str, Answers]],
    weights: Mapping[str, float],
    *,
    default_weight: float | None = None,
) -> dict[str, WeightedQuestionVotes]:
    """Weighted vote counts and totals of ONE galaxy, walking the tree exactly as mlcore.votes.tree.count_votes does.

    Each volunteer's walk is counted by count_votes and scaled by their weight, so a count is the summed weight
    of the volunteers who chose that answer and a total the summed weight of those who answered the question.
    ``votes[q].fractions()`` gives the weighted fractions; a checkbox question's may sum to more than one.

    Args:
        spec: the decision tree.
        classifications: (volunteer id, answers) pairs of one galaxy; a volunteer's last pair counts.
        weights: volunteer id -> weight >= 0, e.g. VolunteerWeights.weights.
        default_weight: the weight of a volunteer absent from ``weights``; None makes that an error.

    Returns:
        question key -> WeightedQuestionVotes, for every question of the tree (zeros when nobody reached it).

    Raises:
        ValueError: for a pair that is not (volunteer, answers mapping), a walk that does not follow the tree, a
            volunteer with no weight, or a negative or non-finite weight (each naming the volunteer).
    """
    if default_weight is not None:
        _check_weight("default_weight", default_weight)
    latest: dict[str, Answers] = {}
    for position, item in enumerate(classifications):
        volunteer, answers = _unpack(item, position, "(volunteer_id, answers)")
        try:
            latest[volunteer] = answers
        except TypeError:
            raise ValueError(f"classification #{position}: unhashable volunteer id {volunteer!r}") from None
    votes = {key: WeightedQuestionVotes({a: 0.0 for a in spec.questions[key].answers}, 0.0) for key in spec.order}
    for volunteer, answers in latest.items():
        weight = weights.get(volunteer, default_weight)
        if weight is None:
            raise ValueError(f"volunteer {volunteer!r} has no weight")
        _check_weight(f"volunteer {volunteer!r}", weight)
        try:
            single = count_votes(spec, [answers])
        except ValueError as error:
            raise ValueError(f"volunteer {volunteer!r}: {error}") from None
        for key, entry in single.items():
            if entry.total:
                votes[key].total += weight * entry.total
                for answer, count in entry.counts.items():
                    votes[key].counts[answer] += weight * count
    return votes


@dataclass(frozen=True)
class _Encoded:
    """Classifications as integer arrays: one row per question answered (a task), one per box ticked (a tick)."""

    volunteers: list[str]
    task_volunteer: np.ndarray  # volunteer index of each task
    task_cell: np.ndarray  # (galaxy, question) index of each task
    task_n_answers: np.ndarray  # how many answers the task's question offers (N of the formula)
    tick_task: np.ndarray  # task index of each tick
    tick_cell_answer: np.ndarray  # (galaxy, answer) index of each tick
    cell_of_cell_answer: np.ndarray  # (galaxy, question) index of each (galaxy, answer)
    n_cells: int


def _encode(spec: TreeSpec, classifications: Iterable[tuple[str, int, Answers]]) -> _Encoded:
    question_index = {key: i for i, key in enumerate(spec.order)}
    slot = {}  # (question, answer) -> position among all answers of the tree
    for key in spec.order:
        for answer in spec.questions[key].answers:
            slot[key, answer] = len(slot)
    volunteer_index: dict[str, int] = {}
    galaxy_index: dict[object, int] = {}
    # array("q") rather than lists: a million classifications make several million rows.
    class_volunteer, class_galaxy = array("q"), array("q")
    task_class, task_question, tick_task, tick_slot = array("q"), array("q"), array("q"), array("q")
    for position, item in enumerate(classifications):
        volunteer, galaxy, answers = _unpack(item, position, "(volunteer_id, galaxy_id, answers)")
        try:
            walked = validate_walk(spec, answers)
            class_volunteer.append(volunteer_index.setdefault(volunteer, len(volunteer_index)))
            class_galaxy.append(galaxy_index.setdefault(galaxy, len(galaxy_index)))
        except (ValueError, TypeError) as error:  # TypeError: an unhashable id
            raise ValueError(
                f"classification #{position} (volunteer {volunteer!r}, galaxy {galaxy!r}): {error}"
            ) from None
        for key in walked:
            task_class.append(position)
            task_question.append(question_index[key])
            given = answers[key]
            for answer in [given] if isinstance(given, str) else given:
                tick_task.append(len(task_question) - 1)
                tick_slot.append(slot[key, answer])
    if not class_volunteer:
        raise ValueError("no classifications to weight")

    tasks, ticks = _keep_last_classification(
        np.asarray(class_volunteer) * len(galaxy_index) + np.asarray(class_galaxy),
        np.asarray(task_class),
        np.asarray(tick_task),
    )
    task_volunteer = np.asarray(class_volunteer)[np.asarray(task_class)[tasks]]
    task_galaxy = np.asarray(class_galaxy)[np.asarray(task_class)[tasks]]
    task_question_arr = np.asarray(task_question)[tasks]
    tick_task_arr = np.cumsum(tasks)[np.asarray(tick_task)[ticks]] - 1  # renumber the tasks kept
    n_answers = np.array([len(spec.questions[key].answers) for key in spec.order])
    # Dense ids for the (galaxy, question) and (galaxy, answer) pairs that occur, so sums stay as small as the data.
    cells, task_cell = np.unique(task_galaxy * len(spec.order) + task_question_arr, return_inverse=True)
    _, first_tick, tick_cell_answer = np.unique(
        task_galaxy[tick_task_arr] * len(slot) + np.asarray(tick_slot)[ticks], return_index=True, return_inverse=True
    )
    return _Encoded(
        volunteers=list(volunteer_index),
        task_volunteer=task_volunteer,
        task_cell=task_cell,
        task_n_answers=n_answers[task_question_arr],
        tick_task=tick_task_arr,
        tick_cell_answer=tick_cell_answer,
        cell_of_cell_answer=task_cell[tick_task_arr[first_tick]],
        n_cells=len(cells),
    )


def _keep_last_classification(pair: np.ndarray, task_class: np.ndarray, tick_task: np.ndarray):
    """Masks of the tasks and ticks that belong to each (volunteer, galaxy) pair's last classification."""
    _, last_from_end = np.unique(pair[::-1], return_index=True)
    keep = np.zeros(len(pair), dtype=bool)
    keep[len(pair) - 1 - last_from_end] = True
    tasks = keep[task_class]
    return tasks, tasks[tick_task]


def _kappa(data: _Encoded, weights: np.ndarray) -> np.ndarray:
    """Every volunteer's consistency given the current weights (NaN for one with no task)."""
    task_weight = weights[data.task_volunteer]
    cell_total = np.bincount(data.task_cell, weights=task_weight, minlength=data.n_cells)
    answer_total = np.bincount(data.tick_cell_answer, weights=task_weight[data.tick_task])
    denominator = cell_total[data.cell_of_cell_answer]
    fraction = np.divide(answer_total, denominator, out=np.zeros_like(answer_total), where=denominator > 0)
    # Answers nobody chose have fraction 0 and no row, so sums over rows are sums over all answers. With S the sum
    # of a question's fractions and n ticks, sum_ticked f + sum_unticked (1 - f) = N - n - S + 2 * sum_ticked f.
    fraction_sum = np.bincount(data.cell_of_cell_answer, weights=fraction, minlength=data.n_cells)
    n_tasks = len(data.task_cell)
    ticked_sum = np.bincount(data.tick_task, weights=fraction[data.tick_cell_answer], minlength=n_tasks)
    n_ticked = np.bincount(data.tick_task, minlength=n_tasks)
    n = data.task_n_answers
    task_kappa = (n - n_ticked - fraction_sum[data.task_cell] + 2.0 * ticked_sum) / n
    n_volunteers = len(data.volunteers)
    kappa_sum = np.bincount(data.task_volunteer, weights=task_kappa, minlength=n_volunteers)
    tasks_per_volunteer = np.bincount(data.task_volunteer, minlength=n_volunteers)
    return np.divide(kappa_sum, tasks_per_volunteer, out=np.full(n_volunteers, np.nan), where=tasks_per_volunteer > 0)


def _unpack(item, position: int, shape: str) -> tuple:
    size = shape.count(",") + 1
    if not isinstance(item, tuple | list) or len(item) != size:
        raise ValueError(f"classification #{position}: expected {shape}, got {item!r}")
    if not isinstance(item[-1], Mapping):
        raise ValueError(f"classification #{position}: answers must be a mapping, got {item[-1]!r}")
    return tuple(item)


def _check_weight(name: str, weight) -> None:
    if isinstance(weight, bool) or not isinstance(weight, Real) or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"{name}: weight must be a finite number >= 0, got {weight!r}")


def _check_settings(*, threshold: float, exponent: float, max_iter: int, tol: float) -> None:
    if not (isinstance(threshold, Real) and 0 < threshold <= 1):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if not (isinstance(exponent, Real) and 0 < exponent < math.inf):
        raise ValueError(f"exponent must be a finite number > 0, got {exponent!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if not (isinstance(tol, Real) and 0 <= tol < math.inf):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
