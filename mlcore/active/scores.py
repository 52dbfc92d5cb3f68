"""Per-galaxy acquisition scores from the model and the volunteers (arrays in, one score per galaxy out; no Django).

Every score reads "higher = more worth labelling". The uncertainty scores (:func:`least_confidence`, :func:`margin`,
:func:`entropy`, :func:`bald`) take the model's class probabilities; :func:`vote_disagreement` takes the volunteers'
vote fractions; :func:`combined` mixes several scores by rank. Import them from :mod:`mlcore.active.query`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

# Probabilities in a row may sum to 1 only up to float16/float32 rounding of a softmax.
SUM_TOLERANCE = 1e-3


def least_confidence(probs) -> np.ndarray:
    """1 - the probability of the most likely class.

    Args:
        probs: (n_galaxies, n_classes) class probabilities, rows summing to 1.

    Returns:
        float64 (n_galaxies,) in [0, 1 - 1/n_classes].

    Raises:
        ValueError: when probs is not 2-D with at least 2 classes, holds NaN/inf or negative values, or a row does
            not sum to 1 (the message names the shape or the row).
    """
    return 1.0 - _checked_probs(probs).max(axis=1)


def margin(probs) -> np.ndarray:
    """1 - (p_top1 - p_top2): a coin flip between two classes scores 1, a sure thing 0.

    Args:
        probs: (n_galaxies, n_classes) class probabilities, rows summing to 1.

    Returns:
        float64 (n_galaxies,) in [0, 1].

    Raises:
        ValueError: as :func:`least_confidence`.
    """
    matrix = _checked_probs(probs)
    top_two = np.partition(matrix, -2, axis=1)[:, -2:]
    return 1.0 - (top_two[:, 1] - top_two[:, 0])


def entropy(probs) -> np.ndarray:
    """Shannon entropy of each row divided by log(n_classes): 0 for a sure thing, 1 for a uniform guess.

    Args:
        probs: (n_galaxies, n_classes) class probabilities, rows summing to 1.

    Returns:
        float64 (n_galaxies,) in [0, 1].

    Raises:
        ValueError: as :func:`least_confidence`.
    """
    matrix = _checked_probs(probs)
    return np.clip(_entropy_nats(matrix) / np.log(matrix.shape[1]), 0.0, 1.0)


def bald(member_probs) -> np.ndarray:
    """BALD (Houlsby et al. 2011): the mutual information between the prediction and the model's parameters.

    H(mean over members of p) - mean over members of H(p), divided by log(n_classes) so that it lies in [0, 1] on
    the same scale as :func:`entropy`. High where the members (MC-dropout passes or an ensemble) are each confident
    but disagree with one another; low where they agree, even on a uniform guess (noise the labels cannot remove).

    Args:
        member_probs: (n_members, n_galaxies, n_classes) class probabilities from n_members >= 2 members.

    Returns:
        float64 (n_galaxies,) in [0, 1].

    Raises:
        ValueError: when member_probs is not 3-D, has fewer than 2 members or 2 classes, or fails the checks of
            :func:`least_confidence` (the message names the shape).
    """
    stacked = np.asarray(member_probs)
    if stacked.ndim != 3:
        raise ValueError(f"member_probs must be 3-D (n_members, n_galaxies, n_classes), got shape {stacked.shape}")
    if stacked.shape[0] < 2:
        raise ValueError(f"bald needs at least 2 members (MC-dropout passes or ensemble members), "
                         f"got shape {stacked.shape}")
    n_members, n_galaxies, n_classes = stacked.shape
    flat = _checked_probs(stacked.reshape(n_members * n_galaxies, n_classes), "member_probs")
    members = flat.reshape(n_members, n_galaxies, n_classes)
    information = _entropy_nats(members.mean(axis=0)) - _entropy_nats(members).mean(axis=0)
    # Rounding can leave a tiny negative where the members agree exactly.
    return np.clip(information / np.log(n_classes), 0.0, 1.0)


def vote_disagreement(questions: Sequence[tuple[np.ndarray, np.ndarray]], *, prior: float = 10.0) -> np.ndarray:
    """How much the volunteers disagree about each galaxy, shrunk towards 0 when few of them voted.

    Per question, the entropy of the vote fractions divided by log(number of answers) (fractions are rescaled to sum
    to 1 first, so a multiple-choice question scores the spread of its ticks). The questions are averaged with each
    galaxy's ``reached`` counts as weights, so a question deep in the tree that two volunteers reached counts less
    than the root question forty answered. The average is multiplied by n / (n + prior), n being how many volunteers
    reached the first question: three split votes are weaker evidence of a hard galaxy than forty split votes.

    Args:
        questions: one (fractions, reached) pair per decision-tree question, the root question first. fractions is
            (n_galaxies, n_answers): each galaxy's vote fractions over the question's answers (NaN allowed where
            reached is 0); reached is (n_galaxies,): how many volunteers answered the question (0 = not reached).
        prior: pseudo-count of the shrinkage, >= 0 (0: no shrinkage).

    Returns:
        float64 (n_galaxies,) in [0, 1] (below 1 when prior > 0); 0 for a galaxy nobody voted on.

    Raises:
        ValueError: when there are no questions, a shape is wrong or the questions disagree on the number of
            galaxies (the message names the question and shapes), a count is negative or not finite, a fraction is
            negative, or NaN where volunteers reached the question, or prior is negative.
    """
    if not np.isfinite(prior) or prior < 0:
        raise ValueError(f"prior must be a finite number >= 0, got {prior}")
    if len(questions) == 0:
        raise ValueError("vote_disagreement needs at least one (fractions, reached) question")
    weighted_sum = weight_total = root_votes = None
    for number, (fractions, reached) in enumerate(questions):
        fractions, reached = _checked_question(number, fractions, reached)
        if root_votes is None:
            root_votes = reached
            weighted_sum, weight_total = np.zeros(len(reached)), np.zeros(len(reached))
        elif len(reached) != len(root_votes):
            raise ValueError(f"question {number} covers {len(reached)} galaxies but question 0 covers "
                             f"{len(root_votes)}: shapes {fractions.shape} and {(len(root_votes),)}")
        weighted_sum += reached * _normalised_vote_entropy(fractions, reached)
        weight_total += reached
    mean = np.divide(weighted_sum, weight_total, out=np.zeros_like(weighted_sum), where=weight_total > 0)
    denominator = root_votes + prior
    confidence = np.divide(root_votes, denominator, out=np.zeros_like(root_votes), where=denominator > 0)
    return mean * confidence


def combined(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """A weighted mean of several scores, each first replaced by its rank scaled to [0, 1].

    Ranks make scores on different scales (an entropy, a typicality, a vote disagreement) comparable without
    assuming anything about their distributions. Ties share their average rank; a constant score (including a
    score over a single galaxy) is 0.5 everywhere, so it shifts every galaxy alike and changes no order.

    Args:
        scores: name -> float (n_galaxies,) score, higher = more worth labelling; all the same length.
        weights: name -> weight >= 0. Names without a score are skipped (the rest are reweighted to sum to 1);
            scores without a weight are ignored.

    Returns:
        float64 (n_galaxies,) in [0, 1]: sum of weight * rank-score over the components present, divided by the sum
        of their weights.

    Raises:
        ValueError: on a negative or non-finite weight, a score that is not 1-D finite numbers, scores of different
            lengths, or when no component with a positive weight has a score.
    """
    for name, weight in weights.items():
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name!r} must be a finite number >= 0, got {weight}")
    present = [name for name in weights if name in scores]
    total = sum(float(weights[name]) for name in present)
    if total <= 0:
        raise ValueError(f"no score to combine: weights name {sorted(weights)} (positive: "
                         f"{sorted(n for n, w in weights.items() if w > 0)}) and scores name {sorted(scores)}")
    mixed = None
    for name in present:
        score = np.asarray(scores[name], dtype=np.float64)
        if score.ndim != 1:
            raise ValueError(f"score {name!r} must be 1-D (n_galaxies,), got shape {score.shape}")
        if not np.isfinite(score).all():
            raise ValueError(f"score {name!r} of shape {score.shape} contains NaN or infinite values")
        if mixed is None:
            mixed = np.zeros(len(score))
        elif len(score) != len(mixed):
            raise ValueError(f"score {name!r} has shape {score.shape} but the first score has ({len(mixed)},)")
        mixed += float(weights[name]) * _rank_scaled(score)
    return mixed / total


def _checked_probs(probs, what: str = "probs") -> np.ndarray:
    """``probs`` as float64 (n, c), or ValueError naming the shape or the first bad row."""
    matrix = np.asarray(probs)
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_galaxies, n_classes), got shape {matrix.shape}")
    if matrix.shape[1] < 2:
        raise ValueError(f"{what} needs at least 2 classes (columns), got shape {matrix.shape}")
    matrix = matrix.astype(np.float64)
    if not np.isfinite(matrix).all():
        raise ValueError(f"{what} of shape {matrix.shape} contains NaN or infinite values")
    if (matrix < 0).any():
        raise ValueError(f"{what} of shape {matrix.shape} contains negative values")
    off = np.flatnonzero(np.abs(matrix.sum(axis=1) - 1.0) > SUM_TOLERANCE)
    if len(off):
        raise ValueError(f"each row of {what} must sum to 1, but row {off[0]} of shape {matrix.shape} sums to "
                         f"{matrix[off[0]].sum():.4g}")
    return matrix


def _entropy_nats(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats over the last axis, with 0 log 0 = 0."""
    logs = np.log(np.where(probs > 0, probs, 1.0))
    return -(probs * logs).sum(axis=-1)


def _checked_question(number: int, fractions, reached) -> tuple[np.ndarray, np.ndarray]:
    fractions = np.asarray(fractions, dtype=np.float64)
    reached = np.asarray(reached, dtype=np.float64)
    if fractions.ndim != 2:
        raise ValueError(f"fractions of question {number} must be 2-D (n_galaxies, n_answers), "
                         f"got shape {fractions.shape}")
    if reached.shape != (fractions.shape[0],):
        raise ValueError(f"reached of question {number} must have shape ({fractions.shape[0]},) to match fractions "
                         f"{fractions.shape}, got {reached.shape}")
    if not np.isfinite(reached).all() or (reached < 0).any():
        raise ValueError(f"reached of question {number} must hold finite counts >= 0")
    answered = reached > 0
    if np.isnan(fractions[answered]).any():
        raise ValueError(f"fractions of question {number} are NaN for "
                         f"{int(np.isnan(fractions[answered]).any(axis=1).sum())} galaxies that volunteers reached")
    if (fractions[answered] < 0).any() or np.isinf(fractions[answered]).any():
        raise ValueError(f"fractions of question {number} must be finite and >= 0 where volunteers reached it")
    return fractions, reached


def _normalised_vote_entropy(fractions: np.ndarray, reached: np.ndarray) -> np.ndarray:
    """Entropy / log(n_answers) of each reached row's fractions rescaled to sum to 1; 0 where unreached or empty."""
    n_answers = fractions.shape[1]
    usable = np.where((reached > 0)[:, None], np.nan_to_num(fractions), 0.0)
    totals = usable.sum(axis=1, keepdims=True)
    shares = np.divide(usable, totals, out=np.zeros_like(usable), where=totals > 0)
    if n_answers < 2:
        return np.zeros(len(fractions))  # one possible answer: nothing to disagree about
    return np.clip(_entropy_nats(shares) / np.log(n_answers), 0.0, 1.0)


def _rank_scaled(score: np.ndarray) -> np.ndarray:
    """Average ranks scaled to [0, 1]; 0.5 everywhere for a constant (or one-element) score."""
    if len(score) == 0:
        return score.copy()
    if score.max() == score.min():
        return np.full(len(score), 0.5)
    return (rankdata(score, method="average") - 1.0) / (len(score) - 1.0)
