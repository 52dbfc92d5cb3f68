"""Training losses: Dirichlet-multinomial likelihood of volunteer vote counts, and weighted hard-label cross-entropy.

Volunteer votes are counts, not labels. Following Zoobot (Walmsley et al. 2022, ``dirichlet_loss``), the model
predicts, for each question of the decision tree, Dirichlet concentrations over the answers; the loss is the
negative log-likelihood of the observed counts under the Dirichlet-multinomial with those concentrations. That
likelihood grows with the number of votes, so a question answered by 40 volunteers pulls harder than one reached by
2, and a question nobody reached contributes exactly nothing: the "dependent question" weighting of Galaxy Zoo comes
out of the likelihood instead of being bolted on.

Outputs and counts are laid out as one row per galaxy with the answers of every question side by side;
``question_slices`` gives each question's ``(start, stop)`` columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

# Zoobot's range for the concentrations: at least 1 (a Dirichlet with all concentrations >= 1 is unimodal, so the
# predicted fractions have one most likely value) and at most 100 (certainty comparable to ~100 votes).
MIN_CONCENTRATION, MAX_CONCENTRATION = 1.0, 100.0


def dirichlet_multinomial_nll(concentrations: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of vote counts under a Dirichlet-multinomial, one value per row.

    With N = sum(counts) and A = sum(concentrations)::

        -log P = -[log N! - sum log n_k! + log Γ(A) - log Γ(N + A) + sum (log Γ(n_k + a_k) - log Γ(a_k))]

    The multinomial coefficient (first two terms) does not depend on the model, but keeping it makes the value a
    true NLL (exp(-value) sums to 1 over all count vectors with the same total). A row without votes gives 0.

    Args:
        concentrations: (B, A), positive.
        counts: (B, A), non-negative (floats are fine: vote tables may hold weighted counts).

    Returns:
        (B,) in the dtype of ``concentrations``.

    Raises:
        ValueError: naming the shapes, when they are not equal 2-D shapes.
    """
    if concentrations.dim() != 2 or concentrations.shape != counts.shape:
        raise ValueError(f"concentrations and counts must be equal (B, A) shapes, got "
                         f"{tuple(concentrations.shape)} and {tuple(counts.shape)}")
    counts = counts.to(concentrations.dtype)
    total = counts.sum(dim=1)
    total_concentration = concentrations.sum(dim=1)
    log_coefficient = torch.lgamma(total + 1) - torch.lgamma(counts + 1).sum(dim=1)
    log_ratio = (torch.lgamma(total_concentration) - torch.lgamma(total + total_concentration)
                 + (torch.lgamma(counts + concentrations) - torch.lgamma(concentrations)).sum(dim=1))
    nll = -(log_coefficient + log_ratio)
    # Mathematically 0 without votes already; the where makes it exactly 0 whatever rounding lgamma does.
    return torch.where(total > 0, nll, torch.zeros_like(nll))


def vote_loss(outputs: torch.Tensor, counts: torch.Tensor, question_slices: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Summed Dirichlet-multinomial NLL over the questions of a decision tree, one value per galaxy.

    Per question, concentrations = 1 + 99 * sigmoid(outputs[:, start:stop]). Questions nobody reached contribute 0,
    and questions reached by few volunteers contribute little (few counts, small likelihood terms).

    Args:
        outputs: (B, T) raw outputs of the vote head, T = total answers over all questions.
        counts: (B, T) vote counts, zeros where a question has no votes.
        question_slices: each question's ``(start, stop)`` columns.

    Returns:
        (B,).

    Raises:
        ValueError: naming the shapes, for unequal or non-2-D outputs/counts or slices outside 0..T.
    """
    _check_outputs(outputs, question_slices)
    if counts.shape != outputs.shape:
        raise ValueError(f"outputs and counts must have equal shapes, got {tuple(outputs.shape)} and "
                         f"{tuple(counts.shape)}")
    concentrations = concentrations_from_outputs(outputs)
    loss = outputs.new_zeros(outputs.shape[0])
    for start, stop in question_slices:
        loss = loss + dirichlet_multinomial_nll(concentrations[:, start:stop], counts[:, start:stop])
    return loss


def vote_loss_per_vote(outputs: torch.Tensor, counts: torch.Tensor,
                       question_slices: Sequence[tuple[int, int]]) -> torch.Tensor:
    """:func:`vote_loss` divided by each galaxy's votes over all its questions: nats per vote, one value per galaxy.

    The summed likelihood grows with the votes (10-30 nats for a galaxy with 40 volunteers), against about 1 nat of
    cross-entropy for a label: added as it is, the votes drown the labels unless the caller's weight shrinks with
    the number of volunteers. Per vote, both terms are on one scale (a single vote costs exactly the cross-entropy
    of the predicted fractions), and within a galaxy a question still weighs by the votes it got (the Galaxy Zoo
    weighting of dependent questions is kept). A galaxy without votes gives 0.

    Raises:
        ValueError: as :func:`vote_loss`.
    """
    loss = vote_loss(outputs, counts, question_slices)
    votes = sum(counts[:, start:stop].sum(dim=1) for start, stop in question_slices)
    return loss / votes.to(loss.dtype).clamp(min=1)


def concentrations_from_outputs(outputs: torch.Tensor) -> torch.Tensor:
    """Raw vote-head outputs -> Dirichlet concentrations in (1, 100), element-wise."""
    return MIN_CONCENTRATION + (MAX_CONCENTRATION - MIN_CONCENTRATION) * torch.sigmoid(outputs)


def expected_fractions(outputs: torch.Tensor, question_slices: Sequence[tuple[int, int]]) -> torch.Tensor:
    """The predicted vote fractions: each concentration over its question's total (the Dirichlet's mean).

    Args:
        outputs: (B, T) raw outputs of the vote head.
        question_slices: each question's ``(start, stop)`` columns.

    Returns:
        (B, T); each question's columns sum to 1; columns outside every question are 0.

    Raises:
        ValueError: naming the shape, for non-2-D outputs or slices outside 0..T.
    """
    _check_outputs(outputs, question_slices)
    concentrations = concentrations_from_outputs(outputs)
    fractions = torch.zeros_like(outputs)
    for start, stop in question_slices:
        block = concentrations[:, start:stop]
        fractions[:, start:stop] = block / block.sum(dim=1, keepdim=True)
    return fractions


def hard_label_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy per galaxy, times its weight; 0 where the target is -1 (no label).

    Args:
        logits: (B, C).
        targets: (B,) int64 class indices in 0..C-1, or -1 for none.
        weights: (B,) non-negative weights (1 for an expert label, less for a pseudo-label), or None for 1.

    Returns:
        (B,).

    Raises:
        ValueError: naming the shapes, for mismatched shapes, non-integer targets or targets outside -1..C-1.
    """
    if logits.dim() != 2 or targets.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (B, C) and targets (B,), got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class indices, got {targets.dtype}")
    if len(targets) and (int(targets.min()) < -1 or int(targets.max()) >= logits.shape[1]):
        raise ValueError(f"targets must lie in -1..{logits.shape[1] - 1}, got "
                         f"{int(targets.min())}..{int(targets.max())}")
    if weights is not None and weights.shape != targets.shape:
        raise ValueError(f"weights must have shape {tuple(targets.shape)}, got {tuple(weights.shape)}")
    labelled = targets >= 0
    # cross_entropy's own ignore_index gives 0 too, but clamping keeps the -1 rows out of its bounds checks on GPU.
    loss = F.cross_entropy(logits, targets.clamp(min=0).long(), reduction="none") * labelled
    return loss if weights is None else loss * weights.to(loss.dtype)


def _check_outputs(outputs: torch.Tensor, question_slices: Sequence[tuple[int, int]]) -> None:
    if outputs.dim() != 2:
        raise ValueError(f"outputs must be (B, T), got shape {tuple(outputs.shape)}")
    width = outputs.shape[1]
    for start, stop in question_slices:
        if not 0 <= start < stop <= width:
            raise ValueError(f"question slice ({start}, {stop}) does not fit outputs of shape {tuple(outputs.shape)}")
