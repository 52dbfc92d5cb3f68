"""Training losses (mlcore/training/losses.py): the Dirichlet-multinomial NLL against brute force, its weighting of
questions by their votes, the vote fractions it implies, and the weighted hard-label loss."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from mlcore.training.losses import (
    dirichlet_multinomial_nll,
    expected_fractions,
    hard_label_loss,
    vote_loss,
    vote_loss_per_vote,
)


def polya_urn_probability(counts: list[int], concentrations: list[float]) -> float:
    """P(counts) by brute force: the Dirichlet-multinomial is a Pólya urn. Every ordering of the votes has the same
    probability, the product over draws of (a_k + votes for k so far) / (A + votes so far); there are
    N! / prod n_k! orderings."""
    total_concentration = sum(concentrations)
    seen = [0] * len(counts)
    probability, drawn = 1.0, 0
    for answer, count in enumerate(counts):
        for _ in range(count):
            probability *= (concentrations[answer] + seen[answer]) / (total_concentration + drawn)
            seen[answer] += 1
            drawn += 1
    orderings = math.factorial(sum(counts)) / math.prod(math.factorial(count) for count in counts)
    return orderings * probability


@pytest.mark.parametrize(("counts", "concentrations"), [
    ([3, 1, 0], [2.0, 1.5, 7.0]), ([0, 5], [1.0, 1.0]), ([2, 2, 2, 1], [0.5, 3.0, 10.0, 1.2]), ([1], [4.0]),
])
def test_the_nll_matches_a_brute_force_polya_urn(counts, concentrations):
    nll = dirichlet_multinomial_nll(torch.tensor([concentrations], dtype=torch.float64),
                                    torch.tensor([counts], dtype=torch.float64))

    assert float(nll[0]) == pytest.approx(-math.log(polya_urn_probability(counts, concentrations)), rel=1e-9)


def test_the_likelihood_sums_to_one_over_every_count_vector_with_the_same_total():
    concentrations = torch.tensor([[2.0, 0.7, 5.0]], dtype=torch.float64)
    vectors = [c for c in itertools.product(range(6), repeat=3) if sum(c) == 5]

    nll = dirichlet_multinomial_nll(concentrations.expand(len(vectors), 3),
                                    torch.tensor(vectors, dtype=torch.float64))

    assert float(torch.exp(-nll).sum()) == pytest.approx(1.0, abs=1e-12)


def test_the_nll_is_lowest_when_the_predicted_fractions_match_the_votes():
    counts = torch.tensor([[30.0, 10.0]])
    shares = torch.linspace(0.05, 0.95, 19)
    concentrations = 40 * torch.stack([shares, 1 - shares], dim=1)

    nll = dirichlet_multinomial_nll(concentrations, counts.expand(len(shares), 2))

    assert float(shares[nll.argmin()]) == pytest.approx(0.75)


def test_a_row_without_votes_contributes_exactly_nothing():
    nll = dirichlet_multinomial_nll(torch.tensor([[3.0, 4.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]]))

    assert nll[0] == 0 and nll[1] > 0


def test_a_question_nobody_reached_adds_no_loss_and_no_gradient():
    slices = [(0, 2), (2, 5)]
    outputs = torch.randn(1, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
    counts = torch.tensor([[12.0, 3.0, 0.0, 0.0, 0.0]])

    loss = vote_loss(outputs, counts, slices)
    loss.sum().backward()

    alone = vote_loss(outputs[:, :2], counts[:, :2], [(0, 2)])
    assert float(loss[0].detach()) == pytest.approx(float(alone[0].detach()))
    assert torch.count_nonzero(outputs.grad[0, 2:]) == 0


def test_a_question_with_40_votes_pulls_harder_than_one_with_2_at_the_same_fractions():
    slices = [(0, 2), (2, 4)]
    outputs = torch.zeros(1, 4, requires_grad=True)  # predicts 50/50 on both questions
    counts = torch.tensor([[40.0, 0.0, 2.0, 0.0]])  # both questions: every volunteer chose the first answer

    vote_loss(outputs, counts, slices).sum().backward()

    many, few = outputs.grad[0, :2].norm(), outputs.grad[0, 2:].norm()
    assert many > 2 * few > 0


def test_vote_loss_sums_the_questions():
    slices = [(0, 3), (3, 5)]
    outputs = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    counts = torch.randint(0, 9, (4, 5), generator=torch.Generator().manual_seed(2)).float()
    concentrations = 1 + 99 * torch.sigmoid(outputs)

    expected = sum(dirichlet_multinomial_nll(concentrations[:, a:b], counts[:, a:b]) for a, b in slices)

    assert torch.allclose(vote_loss(outputs, counts, slices), expected)


def test_expected_fractions_are_the_concentrations_share_of_each_question():
    outputs = torch.randn(3, 6, generator=torch.Generator().manual_seed(3))

    fractions = expected_fractions(outputs, [(0, 2), (2, 5)])

    assert torch.allclose(fractions[:, :2].sum(dim=1), torch.ones(3))
    assert torch.allclose(fractions[:, 2:5].sum(dim=1), torch.ones(3))
    assert torch.all(fractions[:, 5] == 0)  # a column outside every question
    concentrations = 1 + 99 * torch.sigmoid(outputs[:, :2])
    assert torch.allclose(fractions[:, :2], concentrations / concentrations.sum(dim=1, keepdim=True))


def test_the_hard_loss_ignores_unlabelled_rows_and_applies_the_weights():
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([2, -1, 0, 1])
    weights = torch.tensor([1.0, 1.0, 0.5, 0.0])

    loss = hard_label_loss(logits, targets, weights)

    plain = F.cross_entropy(logits, targets.clamp(min=0), reduction="none")
    assert loss[1] == 0 and loss[3] == 0
    assert float(loss[0]) == pytest.approx(float(plain[0]))
    assert float(loss[2]) == pytest.approx(0.5 * float(plain[2]))
    assert torch.allclose(hard_label_loss(logits, targets), plain * (targets >= 0))


@pytest.mark.parametrize(("call", "shape"), [
    (lambda: dirichlet_multinomial_nll(torch.ones(2, 3), torch.ones(2, 4)), "(2, 4)"),
    (lambda: vote_loss(torch.ones(2, 3), torch.ones(3, 3), [(0, 3)]), "(3, 3)"),
    (lambda: vote_loss(torch.ones(2, 3), torch.ones(2, 3), [(1, 4)]), "(1, 4)"),
    (lambda: expected_fractions(torch.ones(3), [(0, 3)]), "(3,)"),
    (lambda: hard_label_loss(torch.ones(2, 3), torch.tensor([0, 1, 2])), "(3,)"),
    (lambda: hard_label_loss(torch.ones(2, 3), torch.tensor([0, 3])), "-1..2"),
    (lambda: hard_label_loss(torch.ones(2, 3), torch.tensor([0, 1]), torch.ones(3)), "(3,)"),
])
def test_mismatched_shapes_and_labels_raise_naming_them(call, shape):
    with pytest.raises(ValueError, match=shape.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        call()


def test_per_vote_one_vote_costs_the_cross_entropy_of_the_predicted_fractions_and_many_votes_do_not_add_up():
    slices = [(0, 2), (2, 5)]
    outputs = torch.randn(3, 5, generator=torch.Generator().manual_seed(3))
    # One volunteer's vote (answer 0, then answer 2 of the second question); then 4 and 400 volunteers.
    counts = torch.tensor([[1.0, 0, 0, 0, 1.0], [3.0, 1.0, 1.0, 1.0, 2.0], [300.0, 100.0, 100.0, 100.0, 200.0]])

    summed = vote_loss(outputs, counts, slices)
    per_vote = vote_loss_per_vote(outputs, counts, slices)

    assert torch.allclose(per_vote, summed / torch.tensor([2.0, 8.0, 800.0]))
    # A single vote under a Dirichlet-multinomial is a categorical draw with the expected fractions: per vote, the
    # loss is the mean cross-entropy of the two answers, the scale of the hard-label term.
    fractions = expected_fractions(outputs, slices)
    cross_entropy = -(torch.log(fractions[0, 0]) + torch.log(fractions[0, 4])) / 2
    assert torch.allclose(per_vote[0], cross_entropy, atol=1e-5)
    assert summed[2] > 20 * summed[0] and per_vote[2] < per_vote[0]  # summed, 400 volunteers drown one
    assert vote_loss_per_vote(outputs, torch.zeros(3, 5), slices).eq(0).all()
