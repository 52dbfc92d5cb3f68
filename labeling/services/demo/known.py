"""The known answers of each demo dataset's galaxies in the GZ2 and GZ DECaLS trees, from its labels (imported, or
held back in the oracle): the "true walks" the demo's simulated volunteers start from."""

from pathlib import Path

from labeling.models import Dataset, DecisionTree, ExpertLabel
from labeling.services.demo.oracle import oracle_labels_by_id
from labeling.services.demo.truth import (
    GALAXY10_TO_GZ_DECALS,
    SLOAN_QUESTION_TO_GZ2,
    gz2_truth_for_example,
    gz2_truth_from_class_string,
)


def _current_labels(dataset: Dataset):
    return ExpertLabel.objects.filter(galaxy__dataset=dataset, superseded_at__isnull=True).select_related(
        "schema", "label_class"
    )


def galaxy10_truths(dataset: Dataset, oracle: Path) -> dict[int, dict]:
    """From the oracle, not the imported labels: most of Galaxy10's labels are held back from the database."""
    ids = dict(dataset.galaxies.values_list("external_id", "id"))
    return {ids[external_id]: GALAXY10_TO_GZ_DECALS[label]
            for external_id, label in oracle_labels_by_id(oracle).items() if external_id in ids}


def sdss_example_truths(dataset: Dataset, gz2: DecisionTree) -> dict[int, dict]:
    answers_by_question = {q.key: [a.key for a in q.answers.all()] for q in gz2.questions.prefetch_related("answers")}
    truths: dict[int, dict] = {}
    for label in _current_labels(dataset).filter(schema__name__startswith="gz-examples-sloan-q").order_by("id"):
        question = SLOAN_QUESTION_TO_GZ2[int(label.schema.name.rsplit("q", 1)[1])]
        answer = answers_by_question[question][int(label.label_class.key)]
        known = truths.get(label.galaxy_id, {})
        implied = gz2_truth_for_example(question, answer)
        if any(known.get(key, value) != value for key, value in implied.items()):
            continue  # a galaxy that exemplifies answers on two different branches keeps the first one
        truths[label.galaxy_id] = {**known, **implied}
    return truths


def gz2_example_truths(dataset: Dataset) -> dict[int, dict]:
    return {
        label.galaxy_id: gz2_truth_from_class_string(label.label_class.key)
        for label in _current_labels(dataset).filter(schema__name="gz2-class")
    }
