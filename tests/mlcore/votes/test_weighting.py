"""Volunteer consistency weighting of Galaxy Zoo 2 (mlcore/votes/weighting.py): kappas, weights, iteration and
weighted votes of one galaxy."""

import math

import numpy as np
import pytest

from mlcore.votes.tree import count_votes, parse_tree, reach
from mlcore.votes.weighting import volunteer_weights, weighted_galaxy_votes
from tests.mlcore.votes.test_tree import TINY

# shape -> (smooth: roundness | disk: odd features, checkboxes | star: end) -> end: the tree of test_tree.py
SPEC = parse_tree(TINY)


def gz2_weight(kappa: float) -> float:
    return min(1.0, (kappa / 0.6) ** 8.5)


def clear_majorities_and_a_contrarian(n_galaxies: int = 20) -> list:
    """Nine volunteers call every galaxy smooth and round; one calls every galaxy a star."""
    rows = []
    for galaxy in range(n_galaxies):
        rows += [(f"honest{i}", galaxy, {"shape": "smooth", "round": "round"}) for i in range(9)]
        rows.append(("contrarian", galaxy, {"shape": "star"}))
    return rows


def test_it_reproduces_the_worked_example_of_willett_et_al_2013():
    # Ten volunteers, one galaxy: 7 smooth, 2 disk, 1 star, so the fractions are (0.7, 0.2, 0.1) as in the paper.
    answers = ["smooth"] * 7 + ["disk"] * 2 + ["star"]
    rows = [(f"v{i}", 1, {"shape": answer}) for i, answer in enumerate(answers)]

    result = volunteer_weights(SPEC, rows, max_iter=1)

    # smooth: (0.7 + (1 - 0.2) + (1 - 0.1)) / 3 = 2.4 / 3 = 0.8
    # disk:   ((1 - 0.7) + 0.2 + (1 - 0.1)) / 3 = 1.4 / 3 = 0.467
    # star:   ((1 - 0.7) + (1 - 0.2) + 0.1) / 3 = 1.2 / 3 = 0.4
    assert result.kappa["v0"] == pytest.approx(0.8)
    assert result.kappa["v7"] == pytest.approx(1.4 / 3)
    assert result.kappa["v9"] == pytest.approx(0.4)
    # w = min(1, (kappa / 0.6) ** 8.5): 0.8 keeps full weight, 0.467 -> (7/9) ** 8.5, 0.4 -> (2/3) ** 8.5
    assert result.weights["v0"] == 1.0
    assert result.weights["v7"] == pytest.approx((7 / 9) ** 8.5)
    assert result.weights["v9"] == pytest.approx((2 / 3) ** 8.5)


def test_threshold_and_exponent_can_be_changed_from_the_gz2_values():
    rows = [(f"v{i}", 1, {"shape": answer}) for i, answer in enumerate(["smooth"] * 7 + ["disk"] * 2 + ["star"])]

    result = volunteer_weights(SPEC, rows, threshold=0.9, exponent=2.0, max_iter=1)

    assert result.weights["v0"] == pytest.approx((0.8 / 0.9) ** 2)
    assert result.weights["v9"] == pytest.approx((0.4 / 0.9) ** 2)


def test_hand_computed_kappas_over_two_galaxies_with_a_checkbox_question():
    rows = [
        ("A", 1, {"shape": "smooth", "round": "round"}),
        ("B", 1, {"shape": "smooth", "round": "round"}),
        ("C", 1, {"shape": "smooth", "round": "cigar"}),
        ("D", 1, {"shape": "disk", "odd": ["ring", "lens"]}),
        ("B", 2, {"shape": "disk", "odd": ["ring", "merger"]}),
        ("D", 2, {"shape": "disk", "odd": ["ring"]}),
    ]

    result = volunteer_weights(SPEC, rows, max_iter=1)

    # Galaxy 1, shape (smooth, disk, star) = (3/4, 1/4, 0):
    #   A, B, C (smooth): (3/4 + (1 - 1/4) + (1 - 0)) / 3 = 5/6;   D (disk): ((1 - 3/4) + 1/4 + 1) / 3 = 1/2
    # Galaxy 1, round (round, cigar) = (2/3, 1/3):  A, B: (2/3 + 2/3) / 2 = 2/3;   C: (1/3 + 1/3) / 2 = 1/3
    # Galaxy 1, odd: D alone ticked ring and lens, so (ring, lens, merger) = (1, 1, 0): (1 + 1 + (1 - 0)) / 3 = 1
    # Galaxy 2, shape = (0, 1, 0): B and D both (1 + 1 + 1) / 3 = 1
    # Galaxy 2, odd (ring, lens, merger) = (1, 0, 1/2):
    #   B ticked ring, merger: (1 + (1 - 0) + 1/2) / 3 = 5/6;   D ticked ring: (1 + (1 - 0) + (1 - 1/2)) / 3 = 5/6
    # Means over each volunteer's questions:
    #   A = (5/6 + 2/3) / 2 = 3/4               C = (5/6 + 1/3) / 2 = 7/12
    #   B = (5/6 + 2/3 + 1 + 5/6) / 4 = 5/6     D = (1/2 + 1 + 1 + 5/6) / 4 = 5/6
    assert result.kappa == pytest.approx({"A": 3 / 4, "B": 5 / 6, "C": 7 / 12, "D": 5 / 6})
    assert result.weights == pytest.approx({"A": 1.0, "B": 1.0, "C": gz2_weight(7 / 12), "D": 1.0})


def test_a_volunteer_who_always_contradicts_a_clear_majority_gets_a_low_weight_and_honest_ones_weight_one():
    result = volunteer_weights(SPEC, clear_majorities_and_a_contrarian())

    assert result.weights["contrarian"] < 0.05
    assert all(result.weights[f"honest{i}"] == 1.0 for i in range(9))


def test_iterating_lowers_the_contrarian_further_once_their_own_votes_count_less():
    rows = clear_majorities_and_a_contrarian()

    first = volunteer_weights(SPEC, rows, max_iter=1)
    settled = volunteer_weights(SPEC, rows)

    # First pass: fractions (0.9, 0, 0.1) give ((1 - 0.9) + 1 + 0.1) / 3 = 0.4. Down-weighted, the contrarian's star
    # share shrinks toward 0 and the kappa toward (0 + 1 + 0) / 3 = 1/3.
    assert first.kappa["contrarian"] == pytest.approx(0.4)
    assert 1 / 3 < settled.kappa["contrarian"] < 0.34
    assert settled.weights["contrarian"] < first.weights["contrarian"]


def test_weights_converge_and_iterations_is_the_first_pass_that_moved_no_weight_more_than_tol():
    rows = clear_majorities_and_a_contrarian()

    def weights_after(n: int) -> np.ndarray:
        return np.array(list(volunteer_weights(SPEC, rows, max_iter=n, tol=0.0).weights.values()))

    result = volunteer_weights(SPEC, rows, max_iter=20, tol=1e-6)
    k = result.iterations

    assert result.converged
    assert 3 <= k <= 20
    assert np.abs(weights_after(k) - weights_after(k - 1)).max() <= 1e-6
    assert np.abs(weights_after(k - 1) - weights_after(k - 2)).max() > 1e-6
    assert not volunteer_weights(SPEC, rows, max_iter=k - 1, tol=1e-6).converged


def test_max_iter_caps_the_iterations_and_says_the_weights_did_not_converge():
    result = volunteer_weights(SPEC, clear_majorities_and_a_contrarian(), max_iter=1)

    assert result.iterations == 1
    assert not result.converged


def test_when_everyone_agrees_every_weight_is_one_after_a_single_iteration():
    rows = [(f"v{i}", galaxy, {"shape": "disk", "odd": ["ring"]}) for i in range(5) for galaxy in range(3)]

    result = volunteer_weights(SPEC, rows)

    assert result.weights == {f"v{i}": 1.0 for i in range(5)}
    assert result.kappa == pytest.approx({f"v{i}": 1.0 for i in range(5)})
    assert (result.iterations, result.converged) == (1, True)


def test_a_volunteer_with_a_single_classification_gets_a_weight_all_the_same():
    rows = [*clear_majorities_and_a_contrarian(), ("newcomer", 0, {"shape": "star"}), ("loner", 99, {"shape": "disk"})]

    result = volunteer_weights(SPEC, rows)

    assert result.weights["newcomer"] < 0.05
    # Alone on a galaxy a volunteer agrees with themselves: fractions (0, 1, 0), kappa (1 + 1 + 1) / 3.
    assert result.kappa["loner"] == pytest.approx(1.0)
    assert result.weights["loner"] == 1.0


def test_a_volunteer_whose_classifications_answered_nothing_keeps_weight_one_and_has_no_kappa():
    result = volunteer_weights(SPEC, [*clear_majorities_and_a_contrarian(), ("blank", 0, {})])

    assert result.weights["blank"] == 1.0
    assert math.isnan(result.kappa["blank"])


def test_a_repeated_classification_counts_only_with_its_last_answers():
    honest = [(f"h{i}", 1, {"shape": "smooth"}) for i in range(4)]
    changed_mind = [("v", 1, {"shape": "star"}), ("v", 1, {"shape": "smooth"})]

    result = volunteer_weights(SPEC, honest + changed_mind, max_iter=1)

    # Only v's last answer (smooth) counts: fractions (1, 0, 0) and every kappa is 1, the first answer forgotten.
    assert result.kappa == pytest.approx({"h0": 1.0, "h1": 1.0, "h2": 1.0, "h3": 1.0, "v": 1.0})


def test_the_vectorised_iteration_matches_the_paper_formula_applied_galaxy_by_galaxy():
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(300):
        shape = ("smooth", "disk", "star")[rng.integers(3)]
        answers = {"shape": shape}
        if shape == "smooth":
            answers["round"] = ("round", "cigar")[rng.integers(2)]
        elif shape == "disk":
            answers["odd"] = [box for box in ("ring", "lens", "merger") if rng.random() < 0.4]
        rows.append((f"v{rng.integers(12)}", int(rng.integers(15)), answers))
    latest = {(v, g): answers for v, g, answers in rows}  # the last classification of a pair counts

    weights = dict.fromkeys((v for v, _ in latest), 1.0)
    for _ in range(3):
        scores = {v: [] for v in weights}
        for galaxy in {g for _, g in latest}:
            on_galaxy = [(v, answers) for (v, g), answers in latest.items() if g == galaxy]
            votes = weighted_galaxy_votes(SPEC, on_galaxy, weights)
            for volunteer, answers in on_galaxy:
                for key, given in answers.items():
                    chosen = {given} if isinstance(given, str) else set(given)
                    fractions = votes[key].fractions()
                    scores[volunteer].append(np.mean([f if a in chosen else 1 - f for a, f in fractions.items()]))
        kappa = {v: float(np.mean(s)) for v, s in scores.items()}
        weights = {v: gz2_weight(k) for v, k in kappa.items()}

    result = volunteer_weights(SPEC, rows, max_iter=3, tol=0.0)

    assert result.kappa == pytest.approx(kappa)
    assert result.weights == pytest.approx(weights)
    assert min(weights.values()) < 1.0  # the data is noisy enough for the weights to matter


def test_weighted_fractions_move_toward_the_majority_when_a_contrarian_is_down_weighted():
    weights = volunteer_weights(SPEC, clear_majorities_and_a_contrarian()).weights
    galaxy = [("honest0", {"shape": "smooth"}), ("honest1", {"shape": "smooth"}), ("contrarian", {"shape": "star"})]

    plain = count_votes(SPEC, [answers for _, answers in galaxy])["shape"].fractions()
    weighted = weighted_galaxy_votes(SPEC, galaxy, weights)["shape"].fractions()

    assert plain["smooth"] == pytest.approx(2 / 3)
    assert weighted["smooth"] > 0.99
    assert weighted["star"] < 0.01


def test_weighted_votes_equal_count_votes_when_every_weight_is_one():
    walks = [
        {"shape": "smooth", "round": "cigar"},
        {"shape": "disk", "odd": ["ring", "merger"]},
        {"shape": "disk", "odd": []},
        {"shape": "disk"},
    ]
    galaxy = [(f"v{i}", walk) for i, walk in enumerate(walks)]

    weighted = weighted_galaxy_votes(SPEC, galaxy, {f"v{i}": 1.0 for i in range(len(walks))})
    plain = count_votes(SPEC, walks)

    for key in SPEC.order:
        assert weighted[key].counts == plain[key].counts
        assert weighted[key].total == plain[key].total


def test_weighted_counts_sum_the_weights_and_checkbox_fractions_may_sum_past_one():
    galaxy = [("a", {"shape": "disk", "odd": ["ring", "lens"]}), ("b", {"shape": "disk", "odd": ["ring"]})]

    votes = weighted_galaxy_votes(SPEC, galaxy, {"a": 1.0, "b": 0.5})

    assert votes["shape"].counts == {"smooth": 0.0, "disk": 1.5, "star": 0.0}
    assert votes["odd"].counts == {"ring": 1.5, "lens": 1.0, "merger": 0.0}
    assert votes["odd"].total == 1.5
    assert votes["odd"].fractions() == pytest.approx({"ring": 1.0, "lens": 2 / 3, "merger": 0.0})
    assert (votes["round"].total, votes["round"].fractions()["round"]) == (0.0, 0.0)
    assert reach(votes, SPEC) == {"shape": 1.0, "round": 0.0, "odd": 1.0}


def test_weighted_votes_count_a_volunteer_once_with_their_last_answers():
    galaxy = [("v", {"shape": "star"}), ("w", {"shape": "smooth"}), ("v", {"shape": "smooth"})]

    votes = weighted_galaxy_votes(SPEC, galaxy, {"v": 1.0, "w": 1.0})

    assert votes["shape"].counts == {"smooth": 2.0, "disk": 0.0, "star": 0.0}


def test_a_volunteer_missing_from_the_weights_takes_the_default_weight_when_one_is_given():
    galaxy = [("known", {"shape": "smooth"}), ("new", {"shape": "star"})]

    votes = weighted_galaxy_votes(SPEC, galaxy, {"known": 1.0}, default_weight=0.25)

    assert votes["shape"].counts == {"smooth": 1.0, "disk": 0.0, "star": 0.25}


@pytest.mark.parametrize("answers, message", [
    ({"colour": "red"}, "no question 'colour'"),
    ({"shape": "blob"}, "no answer 'blob'"),
    ({"shape": "disk", "odd": ["ring", "halo"]}, "no answer 'halo'"),
    ({"shape": "disk", "odd": ["ring", "ring"]}, "ticked twice"),
    ({"round": "round"}, "never reaches"),
])
def test_it_rejects_a_classification_off_the_tree_naming_the_classification_and_the_fault(answers, message):
    rows = [("good", 1, {"shape": "star"}), ("bad", 7, answers)]

    with pytest.raises(ValueError, match=message) as raised:
        volunteer_weights(SPEC, rows)

    assert "classification #1 (volunteer 'bad', galaxy 7)" in str(raised.value)


@pytest.mark.parametrize("rows, message", [
    ([], "no classifications"),
    ([("v", {"shape": "star"})], r"expected \(volunteer_id, galaxy_id, answers\)"),
    (["v,1,star"], r"expected \(volunteer_id, galaxy_id, answers\)"),
    ([("v", 1, "star")], "answers must be a mapping"),
    ([(["v"], 1, {"shape": "star"})], "unhashable"),
])
def test_it_rejects_empty_or_malformed_input(rows, message):
    with pytest.raises(ValueError, match=message):
        volunteer_weights(SPEC, rows)


@pytest.mark.parametrize("setting, message", [
    ({"threshold": 0.0}, "threshold"),
    ({"threshold": 1.5}, "threshold"),
    ({"exponent": -1.0}, "exponent"),
    ({"exponent": math.inf}, "exponent"),
    ({"max_iter": 0}, "max_iter"),
    ({"max_iter": 2.5}, "max_iter"),
    ({"max_iter": True}, "max_iter"),
    ({"tol": -1e-3}, "tol"),
])
def test_it_rejects_settings_out_of_range_naming_them(setting, message):
    with pytest.raises(ValueError, match=message):
        volunteer_weights(SPEC, [("v", 1, {"shape": "star"})], **setting)


@pytest.mark.parametrize("weights, default, message", [
    ({"a": -0.5}, None, "volunteer 'a': weight must be a finite number >= 0, got -0.5"),
    ({"a": float("nan")}, None, "volunteer 'a': weight must be"),
    ({"a": "1"}, None, "volunteer 'a': weight must be"),
    ({}, None, "volunteer 'a' has no weight"),
    ({}, -1.0, "default_weight: weight must be"),
])
def test_weighted_votes_reject_a_missing_negative_or_non_numeric_weight_naming_the_volunteer(weights, default, message):
    with pytest.raises(ValueError, match=message):
        weighted_galaxy_votes(SPEC, [("a", {"shape": "star"})], weights, default_weight=default)


@pytest.mark.parametrize("galaxy, message", [
    ([("a", {"shape": "star"}, 1)], r"expected \(volunteer_id, answers\)"),
    ([("a", "star")], "answers must be a mapping"),
    ([(["a"], {"shape": "star"})], "unhashable volunteer id"),
])
def test_weighted_votes_reject_malformed_pairs(galaxy, message):
    with pytest.raises(ValueError, match=message):
        weighted_galaxy_votes(SPEC, galaxy, {"a": 1.0})


def test_weighted_votes_reject_a_walk_off_the_tree_naming_the_volunteer():
    with pytest.raises(ValueError, match="volunteer 'a': question 'round' was answered but the walk never reaches"):
        weighted_galaxy_votes(SPEC, [("a", {"round": "round"})], {"a": 1.0})


def test_it_weights_a_hundred_thousand_classifications_and_ranks_random_volunteers_below_careful_ones():
    rng = np.random.default_rng(7)
    n_volunteers, n_galaxies, n = 2_000, 5_000, 100_000
    careless = set(range(0, n_volunteers, 20))  # 5% answer at random
    true_shape = rng.integers(3, size=n_galaxies)
    true_round = rng.integers(2, size=n_galaxies)
    shapes, rounds = ("smooth", "disk", "star"), ("round", "cigar")
    rows = []
    for volunteer, galaxy in zip(rng.integers(n_volunteers, size=n), rng.integers(n_galaxies, size=n), strict=True):
        random_pick = volunteer in careless or rng.random() < 0.1
        shape = shapes[rng.integers(3) if random_pick else true_shape[galaxy]]
        answers = {"shape": shape}
        if shape == "smooth":
            answers["round"] = rounds[rng.integers(2) if random_pick else true_round[galaxy]]
        elif shape == "disk":
            answers["odd"] = ["ring"] if random_pick and rng.random() < 0.5 else []
        rows.append((f"v{volunteer}", int(galaxy), answers))

    result = volunteer_weights(SPEC, rows)

    careful = [v for v in result.weights if int(v[1:]) not in careless]
    random = [v for v in result.weights if int(v[1:]) in careless]
    assert result.converged
    assert len(result.weights) == n_volunteers
    assert max(result.kappa[v] for v in random) < min(result.kappa[v] for v in careful)
    assert all(result.weights[v] == 1.0 for v in careful)
    # Random answers still score about 0.67 here, above GZ2's 0.6: a random pick often leads to a question nobody
    # else reached, where the volunteer agrees with themselves. So the published weights only nudge them down.
    assert np.mean([result.weights[v] for v in random]) < 1.0
