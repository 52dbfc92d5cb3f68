"""Acquisition functions for active learning: which galaxies an expert should label next (arrays in; no Django).

The one entry point for callers is :func:`choose`: a strategy name, the pool's masks and whichever inputs the
strategy uses (:func:`strategy_needs` says which), out comes a :class:`Selection`. The building blocks live in three
modules and are re-exported here:

- :mod:`mlcore.active.scores`: one score per galaxy from the model or the volunteers, higher = more worth labelling
  (:func:`least_confidence`, :func:`margin`, :func:`entropy`, :func:`bald`, :func:`vote_disagreement`), and
  :func:`combined` to mix scores;
- :mod:`mlcore.active.diversity`: feature space (:func:`typicality`, :func:`k_center_greedy`, :func:`typiclust`);
- :mod:`mlcore.active.batch`: set-based plumbing (:func:`random_sample`, :func:`top_scores`, :func:`cluster_margin`,
  :func:`without_near_duplicates`).

Cold start: uncertainty needs a model trained on enough labels. Below ``min_labels`` labelled galaxies, or with no
model output at all, :func:`choose` runs TypiClust instead (Hacohen et al. 2022 show typical examples beat uncertain
ones in that regime) and says so in ``Selection.strategy``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mlcore.active.batch import (
    candidate_mask,
    checked_n,
    cluster_margin,
    random_sample,
    top_scores,
    without_near_duplicates,
)
from mlcore.active.diversity import (
    MIN_CLUSTER_SIZE,
    k_center_greedy,
    k_center_picks,
    typicality,
    typiclust,
    typiclust_picks,
)
from mlcore.active.scores import (
    bald,
    combined,
    entropy,
    least_confidence,
    margin,
    vote_disagreement,
)

__all__ = [
    "DEFAULT_STRATEGY", "DEFAULT_WEIGHTS", "MIN_CLUSTER_SIZE", "STRATEGIES", "UNCERTAINTY", "Selection", "bald",
    "choose",
    "cluster_margin", "combined", "entropy", "k_center_greedy", "least_confidence", "margin", "random_sample",
    "strategy_needs", "top_scores", "typicality", "typiclust", "vote_disagreement", "without_near_duplicates",
]

# What a new queue uses: measured best of the strategies on real galaxies (docs/benchmarks.md, "Active learning":
# cluster-margin needed the fewest labels to reach random sampling's balanced accuracy at 400 labels on
# kaggle_gz2_dev and galaxy_zoo_examples, tied on decals_rings, and never trailed random beyond the seeds' spread on
# kaggle_gz2_dev). Its cold start is TypiClust (below ``min_labels``), which covers the classes better than random.
DEFAULT_STRATEGY = "cluster_margin"
STRATEGIES = ("random", "least_confidence", "margin", "entropy", "bald", "kcenter", "typiclust", "cluster_margin",
              "disagreement", "combined")
UNCERTAINTY = frozenset({"least_confidence", "margin", "entropy", "bald", "cluster_margin"})
# Uncertainty (what the model finds hard) + representativeness (so the batch is not all oddballs) + volunteer
# disagreement (what people find hard, available before any model exists).
DEFAULT_WEIGHTS = {"margin": 1.0, "typicality": 0.5, "disagreement": 0.5}

# Inputs of each strategy (and of each component of "combined") without which choose() raises once the model is
# warm. "features" is also used, when given, for the cold-start fallback and the near-duplicate filter.
_REQUIRED = {
    "random": set(), "least_confidence": {"probs"}, "margin": {"probs"}, "entropy": {"probs"},
    "bald": {"member_probs"}, "kcenter": {"features"}, "typiclust": {"features"},
    "cluster_margin": {"probs", "clusters"}, "disagreement": {"vote_questions"},
}
_COMPONENT_INPUTS = {
    "least_confidence": "probs", "margin": "probs", "entropy": "probs", "bald": "member_probs",
    "typicality": "features", "disagreement": "vote_questions",
}
# choose() splits the pool into at most this many TypiClust clusters, as the authors' code does (MAX_NUM_CLUSTERS):
# with thousands of labels, labelled + n clusters would make the k-means cost tens of seconds, and 500 clusters
# already give each pick a distinct region.
TYPICLUST_MAX_CLUSTERS = 500
_MODEL_COMPONENTS = frozenset({"least_confidence", "margin", "entropy", "bald"})
_SCORE_FUNCTIONS = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}


@dataclass(frozen=True)
class Selection:
    """The galaxies :func:`choose` picked.

    Attributes:
        indices: int64 (k,) indices into the pool, best first (k <= n: fewer when fewer candidates exist).
        scores: float64 (k,) the strategy's score of each (for kcenter its distance to the nearest centre, for
            typiclust its typicality within its cluster, for combined the combined score); NaN for random picks and
            for the random first centre of a cold k-center start.
        strategy: the strategy actually run, e.g. "typiclust" when a cold start replaced "margin".
        components: name -> (k,) array, each score computed on the way, per chosen galaxy in the same order (for
            a "why this galaxy?" display): e.g. {"margin": ..., "typicality": ..., "disagreement": ...} for
            combined, {"typicality": ..., "cluster": ...} for typiclust.
    """

    indices: np.ndarray
    scores: np.ndarray
    strategy: str
    components: dict[str, np.ndarray] = field(default_factory=dict)


def strategy_needs(strategy: str, *, weights: Mapping[str, float] | None = None) -> set[str]:
    """Names of the :func:`choose` arguments a strategy uses, so a caller computes only those.

    "features" is included for every strategy but random: score-ranked strategies use it to skip near-duplicates
    and uncertainty strategies for their cold start.

    Args:
        strategy: one of ``STRATEGIES``.
        weights: for "combined", the weights that will be passed (default ``DEFAULT_WEIGHTS``); components with a
            positive weight contribute their input.

    Returns:
        A subset of {"features", "probs", "member_probs", "clusters", "vote_questions"}.

    Raises:
        ValueError: on an unknown strategy, listing ``STRATEGIES``.
    """
    _check_strategy(strategy)
    if strategy == "random":
        return set()
    if strategy == "combined":
        chosen = DEFAULT_WEIGHTS if weights is None else weights
        return {"features"} | {_COMPONENT_INPUTS[name] for name, weight in chosen.items()
                               if weight > 0 and name in _COMPONENT_INPUTS}
    return _REQUIRED[strategy] | {"features"}


def choose(strategy: str, *, n: int, labelled, features=None, probs=None, member_probs=None, clusters=None,
           vote_questions: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
           weights: Mapping[str, float] | None = None, exclude=None, seed: int = 0, min_labels: int = 20,
           dedupe_min_cosine: float = 0.97) -> Selection:
    """Pick the next ``n`` galaxies to label with one strategy; deterministic under ``seed``.

    Cold start: an uncertainty strategy (``UNCERTAINTY``) runs as "typiclust" (or "random" without features) when
    fewer than ``min_labels`` galaxies are labelled or no model output is given (neither probs nor member_probs);
    "combined" then drops its model-based components. Score-ranked strategies (the uncertainty scores,
    disagreement, combined) skip near-duplicates (cosine >= ``dedupe_min_cosine``) when features are given;
    kcenter, typiclust and cluster_margin are diverse by construction.

    Args:
        strategy: one of ``STRATEGIES``.
        n: how many galaxies to choose, >= 0.
        labelled: bool (n_pool,) mask of galaxies already labelled (never chosen; centres for kcenter/typiclust).
        features: (n_pool, dim) feature vectors (kcenter, typiclust, typicality, cold start, near-duplicates).
        probs: (n_pool, n_classes) class probabilities of the active model.
        member_probs: (n_members, n_pool, n_classes) probabilities of MC-dropout passes or ensemble members (bald).
        clusters: int (n_pool,) cluster of each galaxy (cluster_margin).
        vote_questions: (fractions, reached) per decision-tree question, root first (disagreement; see
            :func:`vote_disagreement`).
        weights: component -> weight for "combined" (default ``DEFAULT_WEIGHTS``); components: least_confidence,
            margin, entropy, bald, typicality, disagreement. A component whose input is missing is left out.
        exclude: optional bool (n_pool,) mask of galaxies that must not be chosen (e.g. in another expert's queue).
        seed: random state of every random step.
        min_labels: labelled galaxies needed before the model's uncertainty is trusted.
        dedupe_min_cosine: near-duplicate threshold of :func:`without_near_duplicates`.

    Returns:
        Selection.

    Raises:
        ValueError: on an unknown strategy (listing ``STRATEGIES``); a missing input the strategy needs (naming the
            argument); inputs whose first dimension does not match ``labelled`` (naming the shapes); and whatever
            the underlying function raises.
    """
    _check_strategy(strategy)
    checked_n(n)
    labelled = np.asarray(labelled)
    if labelled.ndim != 1 or labelled.dtype != bool:
        raise ValueError(f"labelled must be a 1-D bool array (n_pool,), got {labelled.dtype} {labelled.shape}")
    n_pool = len(labelled)
    inputs = {"features": features, "probs": probs, "member_probs": member_probs, "clusters": clusters}
    for name, value in inputs.items():
        if value is not None:
            _check_pool_size(name, np.shape(value), n_pool)
    for number, (fractions, _) in enumerate(vote_questions or ()):
        _check_pool_size(f"vote_questions[{number}] fractions", np.shape(fractions), n_pool)
    given = {name for name, value in inputs.items() if value is not None}
    if vote_questions is not None:
        given.add("vote_questions")
    cold = int(labelled.sum()) < min_labels or (probs is None and member_probs is None)
    common = {"n": n, "labelled": labelled, "exclude": exclude, "seed": seed}

    if strategy in UNCERTAINTY and cold:
        strategy = "typiclust" if features is not None else "random"
    missing = sorted(_REQUIRED.get(strategy, set()) - given)
    if missing:
        raise ValueError(f"strategy {strategy!r} needs {' and '.join(missing)}: pass "
                         f"{', '.join(f'{name}=...' for name in missing)}")

    if strategy == "random":
        picked = random_sample(n_pool, **common)
        return Selection(picked, np.full(len(picked), np.nan), "random", {})
    if strategy == "kcenter":
        result = k_center_picks(features, **common)
        return Selection(result.indices, result.scores, "kcenter", {"distance": result.scores})
    if strategy == "typiclust":
        result = typiclust_picks(features, max_clusters=TYPICLUST_MAX_CLUSTERS, **common)
        return Selection(result.indices, result.scores, "typiclust",
                         {"typicality": result.scores, "cluster": result.clusters})
    if strategy == "cluster_margin":
        picked = cluster_margin(probs, clusters, **common)
        uncertainty = margin(probs)[picked]
        return Selection(picked, uncertainty, "cluster_margin",
                         {"margin": uncertainty, "cluster": np.asarray(clusters)[picked].astype(np.int64)})

    # Score-ranked strategies: one score per galaxy, best first, near-duplicates skipped.
    if strategy == "combined":
        components = _combined_components(weights, cold=cold, features=features, probs=probs,
                                          member_probs=member_probs, vote_questions=vote_questions, seed=seed)
        if not components and cold:
            return choose("random", **common)
        score = _combined_over_candidates(components, weights, labelled, exclude)
    else:
        components = {strategy: _score(strategy, probs=probs, member_probs=member_probs,
                                       vote_questions=vote_questions)}
        score = components[strategy]
    # With features, rank every candidate: the near-duplicate filter walks down the ranking as far as it must.
    ranked = top_scores(score, n=n_pool if features is not None else n, labelled=labelled, exclude=exclude, seed=seed)
    picked = ranked if features is None else without_near_duplicates(ranked, features, n=n,
                                                                      min_cosine=dedupe_min_cosine)
    return Selection(picked, score[picked], strategy, {name: values[picked] for name, values in components.items()})


def _score(strategy: str, *, probs, member_probs, vote_questions) -> np.ndarray:
    if strategy == "bald":
        return bald(member_probs)
    if strategy == "disagreement":
        return vote_disagreement(vote_questions)
    return _SCORE_FUNCTIONS[strategy](probs)


def _combined_components(weights, *, cold: bool, features, probs, member_probs, vote_questions,
                         seed: int) -> dict[str, np.ndarray]:
    """Each component of "combined" with a positive weight whose input is given (model-based ones only when warm)."""
    chosen = DEFAULT_WEIGHTS if weights is None else weights
    given = {"features": features, "probs": probs, "member_probs": member_probs, "vote_questions": vote_questions}
    components = {}
    for name, weight in chosen.items():
        if weight <= 0 or name not in _COMPONENT_INPUTS or given[_COMPONENT_INPUTS[name]] is None:
            continue
        if cold and name in _MODEL_COMPONENTS:
            continue
        if name == "typicality":
            components[name] = typicality(features, seed=seed)
        else:
            components[name] = _score(name, probs=probs, member_probs=member_probs, vote_questions=vote_questions)
    if not components and not cold:
        wanted = sorted({_COMPONENT_INPUTS[name] for name, w in chosen.items()
                         if w > 0 and name in _COMPONENT_INPUTS})
        raise ValueError(f"strategy 'combined' has no component to compute: its weights {dict(chosen)} need one of "
                         f"{wanted}")
    return components


def _combined_over_candidates(components, weights, labelled, exclude) -> np.ndarray:
    """The combined score, rank-normalised among the candidates only (the pool's labelled galaxies do not count);
    0 for galaxies that cannot be chosen."""
    allowed = candidate_mask(len(labelled), labelled, exclude)
    score = np.zeros(len(labelled))
    score[allowed] = combined({name: values[allowed] for name, values in components.items()},
                              DEFAULT_WEIGHTS if weights is None else weights)
    return score


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def _check_pool_size(name: str, shape: tuple, n_pool: int) -> None:
    axis = 1 if name == "member_probs" else 0
    if len(shape) <= axis or shape[axis] != n_pool:
        raise ValueError(f"{name} must cover the {n_pool} galaxies of labelled (axis {axis}), got shape {shape}")
