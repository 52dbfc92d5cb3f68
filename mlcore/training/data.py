"""What a retrain cycle trains on (``TrainData``), checked once, and how galaxies are drawn for each epoch.

One row per galaxy: its decoded image, an optional hard label (an expert's, or a pseudo-label at reduced weight) and
optional volunteer vote counts over the decision tree. The caller (the training-cycle service) fills the rows; it
guarantees that held-out galaxies appear in none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TrainData:
    """The training set, one row per galaxy; arrays may be numpy or torch and are converted on construction.

    Attributes:
        images: float32 (N, 3, S, S), normalised (``mlcore.features.augment.decode_all``).
        hard: int64 (N,): class index into ``classes``, or -1 for no hard label.
        hard_weight: float32 (N,): 1.0 for expert labels, ``TrainConfig.pseudo_weight`` for pseudo-labels (ignored
            where hard is -1).
        votes: float32 (N, T): volunteer vote counts, zeros where a galaxy has none; T = total answers of the tree.
        question_slices: each question's ``(start, stop)`` columns of ``votes``; empty when there is no tree.
        classes: the class names, in index order; empty to train on votes only.

    Raises:
        ValueError: naming the field, for inconsistent shapes or lengths, fewer than 2 galaxies, labels outside
            -1..C-1, negative or non-finite weights or counts, bad or overlapping question slices, fewer than two
            classes with labels (when classes are given), or nothing to learn from at all.
    """

    images: torch.Tensor
    hard: torch.Tensor
    hard_weight: torch.Tensor
    votes: torch.Tensor
    question_slices: Sequence[tuple[int, int]]
    classes: list[str]

    def __post_init__(self):
        self.images = torch.as_tensor(self.images)
        if self.images.dim() != 4 or self.images.shape[1] != 3 or self.images.shape[2] != self.images.shape[3] \
                or not self.images.is_floating_point():
            raise ValueError(f"images must be a float (N, 3, S, S) tensor, got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        count = self.images.shape[0]
        if count < 2:
            raise ValueError(f"training needs at least 2 galaxies (BatchNorm needs batches of 2), got {count}")
        self.hard = _vector(self.hard, count, "hard", torch.int64)
        self.hard_weight = _vector(self.hard_weight, count, "hard_weight", torch.float32)
        self.votes = torch.as_tensor(self.votes, dtype=torch.float32)
        if self.votes.dim() != 2 or self.votes.shape[0] != count:
            raise ValueError(f"votes must be ({count}, T) for {count} images, got {tuple(self.votes.shape)}")
        self.classes = [str(name) for name in self.classes]
        self.question_slices = _check_slices(self.question_slices, self.votes.shape[1])
        self._check_values()

    def _check_values(self) -> None:
        n_classes = len(self.classes)
        if len(set(self.classes)) != n_classes:
            raise ValueError(f"class names repeat: {self.classes}")
        if int(self.hard.min()) < -1 or int(self.hard.max()) >= n_classes:
            raise ValueError(f"hard labels must lie in -1..{n_classes - 1} for {n_classes} classes, got "
                             f"{int(self.hard.min())}..{int(self.hard.max())}")
        if not torch.isfinite(self.hard_weight).all() or bool((self.hard_weight < 0).any()):
            raise ValueError("hard_weight must be finite and non-negative")
        if not torch.isfinite(self.votes).all() or bool((self.votes < 0).any()):
            raise ValueError("vote counts must be finite and non-negative")
        labelled = self.hard[self.has_label]
        present = sorted({self.classes[index] for index in labelled.tolist()})
        if n_classes and len(present) < 2:
            raise ValueError(f"needs at least two classes with labels to train a classifier, got {present or 'none'} "
                             f"of {self.classes}")
        if not n_classes and not bool(self.has_votes.any()):
            raise ValueError("nothing to train on: no classes and no galaxy with volunteer votes")
        if int((self.has_label | self.has_votes).sum()) < 2:
            raise ValueError("training needs at least 2 galaxies with a label or votes (BatchNorm needs batches of 2)")

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def has_label(self) -> torch.Tensor:
        """bool (N,): rows with a hard label of non-zero weight."""
        return (self.hard >= 0) & (self.hard_weight > 0)

    @property
    def has_votes(self) -> torch.Tensor:
        """bool (N,): rows with at least one vote on a question of the tree."""
        if not self.question_slices:
            return torch.zeros(len(self.hard), dtype=torch.bool)
        return self.votes.sum(dim=1) > 0


def sampling_weights(data: TrainData, *, balance: bool) -> torch.Tensor:
    """Relative probability of drawing each galaxy in an epoch.

    Labelled galaxies keep, together, their share of the draws (their number), split equally between the classes
    present, so that a rare class (mergers, lenses) is seen as often as a common one. Galaxies with only votes are
    drawn at their base rate (weight 1); galaxies with neither are never drawn.

    Returns:
        float64 (N,), non-negative, some positive.
    """
    labelled, voted = data.has_label, data.has_votes
    weights = voted.to(torch.float64)
    if not balance:
        return torch.where(labelled, torch.ones_like(weights), weights)
    counts = torch.bincount(data.hard[labelled], minlength=len(data.classes)).to(torch.float64)
    n_present = int((counts > 0).sum())
    if n_present:
        per_class = torch.where(counts > 0, int(labelled.sum()) / (n_present * counts.clamp(min=1)), 0.0)
        weights = torch.where(labelled, per_class[data.hard.clamp(min=0)], weights)
    return weights


def epoch_batches(weights: torch.Tensor, batch_size: int, generator: torch.Generator,
                  *, balance: bool) -> list[torch.Tensor]:
    """One epoch of row indices, as many draws as drawable galaxies, cut into batches of near-equal size.

    With ``balance`` the draws are with replacement in proportion to ``weights`` (as ``WeightedRandomSampler``);
    without, a shuffled pass over the drawable rows. Batches differ in size by at most one and none holds a single
    image (BatchNorm cannot train on one).
    """
    drawable = torch.nonzero(weights > 0).flatten()
    count = len(drawable)
    if balance:
        order = torch.multinomial(weights, count, replacement=True, generator=generator)
    else:
        order = drawable[torch.randperm(count, generator=generator)]
    return list(torch.tensor_split(order, batches_per_epoch(weights, batch_size)))


def batches_per_epoch(weights: torch.Tensor, batch_size: int) -> int:
    """How many batches ``epoch_batches`` cuts an epoch into (it depends only on the number of drawable rows)."""
    count = int((weights > 0).sum())
    return max(1, min(-(-count // batch_size), count // 2))


def _vector(values, count: int, name: str, dtype: torch.dtype) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values)
    if tensor.shape != (count,):
        raise ValueError(f"{name} must have shape ({count},) for {count} images, got {tuple(tensor.shape)}")
    if dtype == torch.int64 and (tensor.is_floating_point() or tensor.dtype == torch.bool):
        raise ValueError(f"{name} must hold integer class indices, got {tensor.dtype}")
    return tensor.to(dtype)


def _check_slices(slices: Sequence[tuple[int, int]], width: int) -> list[tuple[int, int]]:
    checked = sorted((int(start), int(stop)) for start, stop in slices)
    for start, stop in checked:
        if not 0 <= start < stop <= width:
            raise ValueError(f"question slice ({start}, {stop}) does not fit {width} vote columns")
    # The vote head has one output per column, so every column must belong to exactly one question.
    edges = [0] + [edge for pair in checked for edge in pair] + [width]
    if any(edges[i] != edges[i + 1] for i in range(0, len(edges), 2)):
        raise ValueError(f"question_slices {checked} must cover the {width} vote columns without gaps or overlaps")
    return [(int(start), int(stop)) for start, stop in slices]
