"""Simulated active learning on a labelled set: the product's own evidence of how many labels a strategy saves.

Every galaxy's label is known in advance. A fixed, stratified share is held out and never queried; each strategy
then starts from no labels, "asks" for labels from the rest (the pool) in batches, refits the probability head
(:mod:`mlcore.active.head`) after each batch and is scored on the held-out galaxies. Comparing the learning curves with
random sampling shows how many labels a strategy needs to reach random's final accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from mlcore.active import query
from mlcore.active.batch import cluster_margin_clusters
from mlcore.active.curves import BASELINE, mean_curves, savings
from mlcore.active.head import ProbabilityHead, evaluate


def simulate(
    features,
    labels,
    *,
    strategies: Sequence[str],
    initial: int = 20,
    step: int = 20,
    rounds: int = 15,
    seed: int = 0,
    test_fraction: float = 0.25,
    min_labels: int = 20,
    weights=None,
    vote_questions=None,
    progress: Callable[[str, int, int], None] | None = None,
    head_factory: Callable[[], object] | None = None,
    start: str = "shared",
) -> dict:
    """Learning curves of query strategies against random sampling, on one held-out split.

    Every strategy starts from ``initial`` labels, then for ``rounds`` rounds fits a head on its labels, scores it
    on the held-out galaxies and queries ``step`` more with the head's probabilities, stopping early when the pool
    runs out. Every strategy sees the same split and the same seeds. With ``start="shared"`` the initial labels are
    one random draw from the pool, the same for every strategy (what a project has before it queries: the curves
    then differ by the queries alone); with ``start="own"`` each strategy picks them itself with no model (its cold
    start, ``query.choose``), which is what a new project's first batch is.

    Args:
        features: (n, d) feature vectors.
        labels: (n,) true class of each galaxy (compared as str).
        strategies: names from ``mlcore.active.query.STRATEGIES``; "random" is added first when missing, repeats
        dropped. initial: labels queried before the first fit.
        step: labels queried per round.
        rounds: rounds after the first fit; a curve has at most ``rounds + 1`` points.
        seed: seeds the split, the head (by default), the pool's k-means and every query.
        test_fraction: share of the galaxies held out, stratified by class; a class with fewer than 2 galaxies
            stays wholly in the pool.
        min_labels: passed to ``query.choose``: below this many labels it uses its cold-start strategy.
        weights: passed to ``query.choose`` unchanged (component weights of "combined").
        vote_questions: per-galaxy vote data for ``query.choose``, [(fractions (n, answers), reached (n,)), ...]
            per question; the pool's rows are passed.
        progress: called as ``progress(strategy, points_done, points_planned)`` after each point.
        head_factory: returns an unfitted head (``fit``, ``predict``, ``predict_proba``, ``member_proba``);
            default ``ProbabilityHead(seed=seed)``.
        start: "shared" or "own" (above).

    Returns:
        {"parameters": {the inputs other than arrays and callables, "n_galaxies", "n_features", "n_test",
        "n_pool", "classes"}, "curves": {strategy: [{"labels", "accuracy", "balanced_accuracy", "macro_f1",
        "strategy_used"}, ...]}, "savings": ``mlcore.active.curves.savings`` of this one run, "seconds": {strategy:
        wall time}, "queried": {strategy: indices into ``features`` in the order they were queried}}. Plain JSON
        types only.
        ``strategy_used`` is what ``query.choose`` reports for the batch that brought the labels to that point
        (e.g. "typiclust" for a cold start).

    Raises:
        ValueError: for an unknown strategy (listing the known ones), features that are not a finite 2-D array,
            labels of another length, initial or step < 1, rounds < 0, or a split that cannot be stratified.
    """
    matrix = np.asarray(features, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"features must be a non-empty 2-D array (galaxies x dimensions), got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"features of shape {matrix.shape} contain NaN or infinite values")
    names = np.asarray(labels).astype(str)
    if names.shape != (len(matrix),):
        raise ValueError(f"labels must have shape ({len(matrix)},) like the features' rows, got {names.shape}")
    if initial < 1 or step < 1 or rounds < 0:
        raise ValueError(f"need initial >= 1, step >= 1 and rounds >= 0, got {initial}, {step}, {rounds}")
    ordered = strategy_order(strategies)
    if start not in ("shared", "own"):
        raise ValueError(f"start must be 'shared' or 'own', got {start!r}")
    if "disagreement" in ordered and vote_questions is None:
        raise ValueError("strategy 'disagreement' needs vote_questions: pass the volunteers' votes per question")

    pool, test = held_out_split(names, test_fraction=test_fraction, seed=seed)
    classes = sorted(set(names.tolist()))
    context = {
        "features": matrix[pool],
        "labels": names[pool],
        "test_features": matrix[test],
        "test_labels": names[test],
        "classes": classes,
        "vote_questions": _rows(vote_questions, pool),
        "weights": weights,
        "min_labels": min_labels,
        "seed": seed,
        "factory": head_factory or (lambda: ProbabilityHead(seed=seed)),
        "clusters": None,
        "start": None,
    }
    if start == "shared":
        # The same draw random sampling makes for its own first batch, so random's curve is the same either way.
        context["start"] = query.random_sample(len(pool), n=min(initial, len(pool)),
                                               labelled=np.zeros(len(pool), dtype=bool), seed=_round_seed(seed, 0))
    if any("clusters" in query.strategy_needs(name, weights=weights) for name in ordered) and len(pool) >= 2:
        context["clusters"] = cluster_margin_clusters(context["features"], len(classes), seed=seed)

    curves: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    queried: dict[str, list[int]] = {}
    for name in ordered:
        started = time.perf_counter()
        curves[name], order = _curve(name, context, initial=initial, step=step, rounds=rounds, progress=progress)
        seconds[name] = round(time.perf_counter() - started, 3)
        queried[name] = pool[order].tolist()

    parameters = {
        "strategies": ordered, "initial": initial, "step": step, "rounds": rounds, "seed": seed,
        "test_fraction": test_fraction, "min_labels": min_labels, "start": start, "weights": _plain_weights(weights),
        "n_galaxies": len(matrix), "n_features": matrix.shape[1], "n_test": len(test), "n_pool": len(pool),
        "classes": classes,
    }
    return {"parameters": parameters, "curves": curves, "savings": savings([curves], baseline=BASELINE),
            "seconds": seconds, "queried": queried}


def strategy_order(strategies: Sequence[str]) -> list[str]:
    """``strategies`` with "random" first (added when missing) and repeats dropped, in the order given.

    Raises:
        ValueError: listing the known strategies when one is unknown.
    """
    if isinstance(strategies, str):
        strategies = [strategies]
    unknown = [name for name in strategies if name not in query.STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; known: {list(query.STRATEGIES)}")
    return list(dict.fromkeys([BASELINE, *strategies]))


def held_out_split(labels, *, test_fraction: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of galaxy indices into (pool, held-out), both sorted int64.

    Classes with fewer than two galaxies cannot be stratified and stay wholly in the pool.

    Raises:
        ValueError: when ``test_fraction`` is outside (0, 1), no class has two galaxies, or the held-out share is too
            small (or too large) to hold every splittable class.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    names = np.asarray(labels).astype(str)
    classes, counts = np.unique(names, return_counts=True)
    splittable = np.isin(names, classes[counts >= 2])
    rows = np.flatnonzero(splittable)
    if len(rows) == 0:
        raise ValueError(f"no class has two galaxies among {len(names)}: nothing can be held out")
    try:
        pool, test = train_test_split(rows, test_size=test_fraction, stratify=names[rows], random_state=seed)
    except ValueError as exc:
        raise ValueError(f"cannot hold out a stratified {test_fraction:g} of {len(rows)} galaxies in "
                         f"{int((counts >= 2).sum())} classes: {exc}") from exc
    pool = np.concatenate([pool, np.flatnonzero(~splittable)])
    return np.sort(pool).astype(np.int64), np.sort(test).astype(np.int64)


def _curve(strategy: str, context: dict, *, initial: int, step: int, rounds: int, progress) -> tuple[list, list]:
    """One strategy's learning curve; returns (points, pool indices in query order)."""
    pool_labels = context["labels"]
    labelled = np.zeros(len(pool_labels), dtype=bool)
    order: list[int] = []
    needs = query.strategy_needs(strategy, weights=context["weights"])
    head = None
    points: list[dict] = []
    for r in range(rounds + 1):
        remaining = int((~labelled).sum())
        batch = initial if r == 0 else step
        # Model outputs only where the strategy reads them. Without a head (no labels yet, or one class only) there
        # are none, and query.choose runs its cold start for the strategies that need them.
        if r == 0 and context["start"] is not None:
            selection = query.Selection(context["start"], np.full(len(context["start"]), np.nan), "random")
        else:
            probs = head.predict_proba(context["features"]) if head is not None and "probs" in needs else None
            members = head.member_proba(context["features"]) if head is not None and "member_probs" in needs else None
            selection = query.choose(
                strategy, n=min(batch, remaining), labelled=labelled.copy(), features=context["features"],
                probs=probs, member_probs=members, clusters=context["clusters"],
                vote_questions=context["vote_questions"], weights=context["weights"],
                seed=_round_seed(context["seed"], r), min_labels=context["min_labels"],
            )
        chosen = np.asarray(selection.indices, dtype=np.int64)
        if len(chosen) and (chosen.min() < 0 or chosen.max() >= len(labelled) or labelled[chosen].any()):
            raise RuntimeError(f"query.choose({strategy!r}) returned indices outside the unlabelled pool: {chosen}")
        labelled[chosen] = True
        order.extend(chosen.tolist())

        head, predicted = _fit_and_predict(context, labelled)
        scores = evaluate(context["test_labels"], predicted, context["classes"])
        points.append({"labels": int(labelled.sum()), "accuracy": scores["accuracy"],
                       "balanced_accuracy": scores["balanced_accuracy"], "macro_f1": scores["macro_f1"],
                       "strategy_used": str(selection.strategy)})
        if progress is not None:
            progress(strategy, r + 1, rounds + 1)
        if labelled.all():
            break
    return points, order


def _fit_and_predict(context: dict, labelled: np.ndarray):
    """(fitted head or None, predicted labels of the held-out galaxies).

    With fewer than two classes among the labels no head can be fitted; every held-out galaxy is then predicted as
    the most common labelled class (ties: the first in sorted order).
    """
    known = context["labels"][labelled]
    seen, counts = np.unique(known, return_counts=True)
    if len(seen) < 2:
        majority = seen[counts.argmax()] if len(seen) else context["classes"][0]
        return None, np.full(len(context["test_labels"]), majority)
    head = context["factory"]().fit(context["features"][labelled], known)
    return head, head.predict(context["test_features"])


def _round_seed(seed: int, round_index: int) -> int:
    # Distinct per round (the same seed every round would repeat random's draws), identical across strategies.
    return int(np.random.SeedSequence([seed, round_index]).generate_state(1)[0])


def _rows(values, rows: np.ndarray):
    """``values`` restricted to the galaxies ``rows``: an array (first axis = galaxies), or a list/tuple/mapping of
    them at any depth (e.g. vote_questions as [(fractions, reached), ...]), or None."""
    if values is None:
        return None
    if isinstance(values, Mapping):
        return {key: _rows(value, rows) for key, value in values.items()}
    if isinstance(values, list | tuple):
        return type(values)(_rows(value, rows) for value in values)
    return np.asarray(values)[rows]


def _plain_weights(weights):
    if weights is None:
        return None
    if isinstance(weights, Mapping):
        return {str(key): float(value) for key, value in weights.items()}
    return [float(value) for value in np.ravel(weights)]


def simulate_seeds(features, labels, *, seeds: Sequence[int] = (0, 1, 2, 3, 4), progress=None, **options) -> dict:
    """:func:`simulate` once per seed (each its own split, initial labels and random choices), averaged.

    Args:
        seeds: one run per seed, at least one.
        progress: called as ``progress(f"seed {seed}: {strategy}", points_done, points_planned)``.
        options: the other arguments of :func:`simulate` (strategies, initial, step, rounds, start, ...).

    Returns:
        {"parameters": the first run's, with "seeds" instead of "seed"; "curves": ``mean_curves`` (mean and spread
        of each metric per budget); "savings": ``mlcore.active.curves.savings`` over the seeds; "seconds": wall time
        per strategy summed over the seeds; "runs": [{"seed", "curves"} per seed]}. Plain JSON types only.

    Raises:
        ValueError: no seeds, and whatever :func:`simulate` raises.
    """
    seeds = [int(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    runs, seconds, parameters = [], {}, None
    for seed in seeds:
        report = None if progress is None else (lambda name, done, total, seed=seed:
                                                progress(f"seed {seed}: {name}", done, total))
        result = simulate(features, labels, seed=seed, progress=report, **options)
        runs.append({"seed": seed, "curves": result["curves"]})
        for name, value in result["seconds"].items():
            seconds[name] = round(seconds.get(name, 0.0) + value, 3)
        if parameters is None:
            parameters = {key: value for key, value in result["parameters"].items() if key != "seed"}
    parameters["seeds"] = seeds
    curves = [run["curves"] for run in runs]
    return {"parameters": parameters, "curves": mean_curves(curves), "savings": savings(curves),
            "seconds": seconds, "runs": runs}
