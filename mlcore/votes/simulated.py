"""Simulated volunteers: walks through a decision tree drawn from a galaxy's known answers.

Used for demo data and for tests of the vote pipeline, never mixed with real votes (the caller marks them as
simulated). Each volunteer answers a question the "truth" covers correctly with probability ``accuracy`` and
otherwise picks one of the other answers uniformly; a question the truth does not cover (reached after a wrong
turn, or simply unknown) gets a uniform answer. That reproduces what real vote tables show: clear galaxies have
high-fraction answers near the root and noisier answers deep in the tree.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlcore.votes.tree import MULTIPLE, TreeSpec, validate_walk


def simulate_walk(
    spec: TreeSpec, truth: Mapping[str, str | list[str]], *, accuracy: float, rng: np.random.Generator
) -> dict[str, str | list[str]]:
    """One volunteer's walk from the root to the end of the tree.

    Raises:
        ValueError: when accuracy is outside [0, 1].
    """
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must lie in [0, 1], got {accuracy}")
    walk: dict[str, str | list[str]] = {}
    current: str | None = spec.root
    while current is not None:
        question = spec.questions[current]
        answers = list(question.answers)
        known = truth.get(current)
        if question.kind == MULTIPLE:
            true_set = set([known] if isinstance(known, str) else (known or []))
            ticked = []
            for answer in answers:
                p = accuracy if answer in true_set else (1.0 - accuracy) / max(len(answers), 1)
                if known is None:
                    p = 1.0 / max(len(answers), 1)
                if rng.random() < p:
                    ticked.append(answer)
            choice: str | list[str] = ticked
        elif known is None or len(answers) == 1:
            choice = answers[int(rng.integers(len(answers)))]
        elif rng.random() < accuracy:
            choice = known
        else:
            others = [a for a in answers if a != known]
            choice = others[int(rng.integers(len(others)))]
        walk[current] = choice
        current = question.next_question(choice)
    return walk


def simulate_walks(
    spec: TreeSpec,
    truth: Mapping[str, str | list[str]],
    *,
    n_volunteers: int,
    accuracy: float,
    seed: int,
) -> list[dict[str, str | list[str]]]:
    """``n_volunteers`` independent walks, reproducible from ``seed``.

    Raises:
        ValueError: when the truth names a question or answer the tree lacks, or n_volunteers is negative.
    """
    if n_volunteers < 0:
        raise ValueError(f"n_volunteers must be >= 0, got {n_volunteers}")
    for key, answer in truth.items():
        question = spec.question(key)
        for a in [answer] if isinstance(answer, str) else answer:
            if a not in question.answers:
                raise ValueError(f"question {key!r} has no answer {a!r}")
    rng = np.random.default_rng(seed)
    walks = [simulate_walk(spec, truth, accuracy=accuracy, rng=rng) for _ in range(n_volunteers)]
    for walk in walks:
        validate_walk(spec, walk)  # a simulated walk that breaks the tree would be a bug here, not bad input
    return walks
