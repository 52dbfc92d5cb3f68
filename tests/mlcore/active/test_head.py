"""The probability head on frozen features, its metrics and its file format (mlcore/active/head.py)."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlcore.active import head as head_module
from mlcore.active.head import ProbabilityHead, _aligned_proba, evaluate, expected_calibration_error

NAMES = np.array(["spiral", "elliptical", "merger", "edge_on"])  # deliberately not in sorted order


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated classes in 12 dimensions, split into training and test rows."""
    vectors, codes = make_blobs(n_samples=600, n_features=12, centers=4, cluster_std=1.0, random_state=0)
    labels = NAMES[codes]
    return vectors[:400].astype(np.float32), labels[:400], vectors[400:].astype(np.float32), labels[400:]


@pytest.fixture(scope="module")
def fitted(blobs):
    x_train, y_train, _, _ = blobs
    return ProbabilityHead(n_members=3).fit(x_train, y_train)


def imbalanced(seed: int, sizes: list[int]):
    """Two overlapping blobs, 'spiral' common and 'merger' rare."""
    vectors, codes = make_blobs(n_samples=sizes, n_features=4, centers=[[0, 0, 0, 0], [1.5, 1.5, 0, 0]],
                                cluster_std=1.0, random_state=seed)
    return vectors, np.where(codes == 1, "merger", "spiral")


def test_it_learns_separable_blobs(blobs, fitted):
    _, _, x_test, y_test = blobs

    assert (fitted.predict(x_test) == y_test).mean() > 0.95
    assert fitted.calibrated_ is True


def test_its_probabilities_sum_to_one_with_columns_in_sorted_class_order(blobs, fitted):
    _, _, x_test, y_test = blobs

    probs = fitted.predict_proba(x_test)

    assert fitted.classes_.tolist() == sorted(NAMES.tolist())
    assert probs.shape == (200, 4) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    # The column of each row's true class holds its largest probability: the columns follow classes_.
    assert (fitted.classes_[probs.argmax(axis=1)] == y_test).mean() > 0.95


def test_it_reports_integer_labels_as_sorted_strings():
    vectors, codes = make_blobs(n_samples=90, n_features=3, centers=3, random_state=1)

    head = ProbabilityHead(calibration=None).fit(vectors, codes + 8)  # 8, 9, 10: numeric and string order differ

    assert head.classes_.tolist() == ["10", "8", "9"]
    assert set(head.predict(vectors).tolist()) <= {"8", "9", "10"}


def test_balanced_weighting_raises_the_rare_class_recall_over_an_unweighted_regression():
    x_train, y_train = imbalanced(0, [570, 30])
    x_test, y_test = imbalanced(100, [950, 50])
    unweighted = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)

    for head in (ProbabilityHead(calibration=None).fit(x_train, y_train), ProbabilityHead().fit(x_train, y_train)):
        rare_recall = recall_score(y_test, head.predict(x_test), pos_label="merger")
        assert rare_recall > recall_score(y_test, unweighted.predict(x_test), pos_label="merger") + 0.15


def test_it_falls_back_to_the_plain_regression_when_a_class_is_too_small_to_calibrate():
    vectors, labels = imbalanced(0, [40, 2])

    assert ProbabilityHead(cv=3).fit(vectors, labels).calibrated_ is False
    assert ProbabilityHead(cv=2).fit(vectors, labels).calibrated_ is True
    assert ProbabilityHead(calibration=None).fit(*imbalanced(0, [40, 40])).calibrated_ is False
    assert ProbabilityHead().fit(vectors, labels).predict_proba(vectors).shape == (42, 2)


def test_member_proba_gives_one_distribution_per_member_aligned_to_classes(blobs, fitted):
    _, _, x_test, y_test = blobs

    members = fitted.member_proba(x_test)

    assert members.shape == (3, 200, 4)
    np.testing.assert_allclose(members.sum(axis=2), 1.0, atol=1e-9)
    assert (fitted.classes_[members.mean(axis=0).argmax(axis=1)] == y_test).mean() > 0.95
    assert not np.allclose(members[0], members[1])  # different bootstrap resamples


def test_member_proba_is_deterministic_under_a_seed(blobs):
    x_train, y_train, x_test, _ = blobs

    first = ProbabilityHead(calibration=None, n_members=2, seed=4).fit(x_train, y_train).member_proba(x_test)
    again = ProbabilityHead(calibration=None, n_members=2, seed=4).fit(x_train, y_train).member_proba(x_test)

    np.testing.assert_array_equal(first, again)


def test_a_model_that_missed_a_class_gets_zero_probability_in_that_column():
    vectors, codes = make_blobs(n_samples=60, n_features=3, centers=2, random_state=0)
    model = LogisticRegression().fit(vectors, np.where(codes == 0, 0, 2))  # class codes 0 and 2 of 0..2

    probs = _aligned_proba(model, vectors, 3)

    assert probs.shape == (60, 3)
    np.testing.assert_array_equal(probs[:, 1], 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[:, [0, 2]], model.predict_proba(vectors))


def test_predictions_do_not_depend_on_the_batch_size(blobs, fitted, monkeypatch):
    _, _, x_test, _ = blobs
    whole = fitted.predict_proba(x_test)

    monkeypatch.setattr(head_module, "PREDICT_BATCH", 7)

    np.testing.assert_allclose(fitted.predict_proba(x_test), whole, rtol=1e-12)
    assert fitted.member_proba(x_test).shape == (3, 200, 4)


def test_a_saved_head_loads_with_identical_probabilities(blobs, tmp_path):
    x_train, y_train, x_test, _ = blobs
    head = ProbabilityHead(n_members=2).fit(x_train, y_train)

    path = head.save(tmp_path / "heads" / "head.joblib")
    loaded = ProbabilityHead.load(path)

    assert path.exists() and not list(path.parent.glob("*.tmp"))
    np.testing.assert_array_equal(loaded.predict_proba(x_test), head.predict_proba(x_test))
    np.testing.assert_array_equal(loaded.member_proba(x_test), head.member_proba(x_test))
    assert loaded.classes_.tolist() == head.classes_.tolist() and loaded.calibrated_ == head.calibrated_


def test_a_head_saved_after_its_members_were_fitted_keeps_them(blobs, tmp_path):
    x_train, y_train, x_test, _ = blobs
    head = ProbabilityHead(calibration=None, n_members=2).fit(x_train, y_train)
    members = head.member_proba(x_test)

    loaded = ProbabilityHead.load(head.save(tmp_path / "head.joblib"))

    np.testing.assert_array_equal(loaded.member_proba(x_test), members)


@pytest.mark.parametrize("content", [b"not a pickle at all", b""])
def test_loading_a_corrupt_file_raises_an_error_naming_the_path(tmp_path, content):
    path = tmp_path / "broken.joblib"
    path.write_bytes(content)

    with pytest.raises(ValueError, match="broken.joblib"):
        ProbabilityHead.load(path)


def test_loading_a_missing_file_or_another_object_raises_an_error_naming_the_path(tmp_path):
    import joblib

    joblib.dump({"not": "a head"}, tmp_path / "dict.joblib")

    with pytest.raises(ValueError, match="missing.joblib"):
        ProbabilityHead.load(tmp_path / "missing.joblib")
    with pytest.raises(ValueError, match=r"dict.joblib does not hold a fitted ProbabilityHead \(found dict\)"):
        ProbabilityHead.load(tmp_path / "dict.joblib")


@pytest.mark.parametrize("use", [
    lambda head: head.predict_proba(np.zeros((2, 3))),
    lambda head: head.predict(np.zeros((2, 3))),
    lambda head: head.member_proba(np.zeros((2, 3))),
    lambda head: head.save("never-written.joblib"),
])
def test_an_unfitted_head_refuses_to_be_used(use):
    with pytest.raises(ValueError, match="not fitted yet"):
        use(ProbabilityHead())


@pytest.mark.parametrize("vectors, labels, message", [
    (np.zeros((4, 2)), ["x"] * 4, r"needs at least two classes, got \['x'\]"),
    (np.zeros((4, 2)), ["x", "y", "x"], "X has 4 rows, y has shape \\(3,\\)"),
    (np.zeros(4), ["x", "y", "x", "y"], r"2-D array .* got shape \(4,\)"),
    (np.array([[0.0, np.nan], [1.0, 1.0]]), ["x", "y"], "NaN"),
])
def test_fit_rejects_unusable_input(vectors, labels, message):
    with pytest.raises(ValueError, match=message):
        ProbabilityHead().fit(vectors, labels)


def test_fit_rejects_bad_hyperparameters_and_sample_weights():
    vectors, labels = np.zeros((4, 2)), ["x", "y", "x", "y"]

    with pytest.raises(ValueError, match="calibration must be one of"):
        ProbabilityHead(calibration="platt").fit(vectors, labels)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(4,\), got \(3,\)"):
        ProbabilityHead().fit(vectors, labels, sample_weight=[1, 1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        ProbabilityHead().fit(vectors, labels, sample_weight=[1, -1, 1, 1])


def test_sample_weights_change_the_fit():
    vectors, labels = imbalanced(0, [100, 100])
    trusted = np.where(vectors[:, 0] > 0.75, 5.0, 1.0)

    plain = ProbabilityHead(calibration=None).fit(vectors, labels).predict_proba(vectors)
    weighted = ProbabilityHead(calibration=None).fit(vectors, labels, sample_weight=trusted).predict_proba(vectors)

    assert np.abs(plain - weighted).max() > 0.01


def test_it_rejects_rows_with_another_number_of_features(fitted):
    with pytest.raises(ValueError, match="X has 5 features per row, the head was fitted on 12"):
        fitted.predict_proba(np.zeros((3, 5)))


def test_evaluate_reports_accuracy_balanced_accuracy_per_class_scores_and_the_confusion_matrix():
    truth = ["a", "a", "a", "a", "b", "b"]
    predicted = ["a", "a", "a", "b", "b", "c"]

    report = evaluate(truth, predicted, ["a", "b", "c"])

    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)  # c has no true rows: not averaged
    assert report["confusion"] == [[3, 1, 0], [0, 1, 1], [0, 0, 0]]
    assert report["per_class"]["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["classes"] == ["a", "b", "c"]


@pytest.mark.parametrize("truth, predicted, message", [
    (["a", "b"], ["a"], "one length"),
    ([], [], "y_true is empty"),
    (["a", "z"], ["a", "a"], r"outside classes \['a', 'b'\]: \['z'\]"),
])
def test_evaluate_rejects_mismatched_input(truth, predicted, message):
    with pytest.raises(ValueError, match=message):
        evaluate(truth, predicted, ["a", "b"])


def test_expected_calibration_error_is_zero_when_confidence_matches_accuracy():
    probs = np.array([[0.75, 0.25]] * 4)

    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(probs, np.array([0, 1, 1, 1])) == pytest.approx(0.5)


def test_expected_calibration_error_weights_bins_by_their_rows():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    truth = np.array([0, 0, 1, 1])  # bin 0.9-1.0: accuracy 1 vs 0.95; bin 0.5-0.6: accuracy 0 vs 0.55

    assert expected_calibration_error(probs, truth) == pytest.approx(0.5 * 0.05 + 0.5 * 0.55)


@pytest.mark.parametrize("probs, truth, message", [
    (np.ones(3), np.zeros(3, dtype=int), r"got shape \(3,\)"),
    (np.ones((3, 2)) / 2, np.zeros(2, dtype=int), r"shape \(3,\)"),
    (np.ones((3, 2)) / 2, np.array([0, 1, 2]), r"0\.\.1, got 0\.\.2"),
    (np.ones((3, 2)) / 2, np.array([0.0, 1.0, 1.0]), "integers"),
])
def test_expected_calibration_error_rejects_bad_shapes(probs, truth, message):
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(probs, truth)
