"""The active-learning simulation: the labels of a dataset are hidden behind an oracle (a labels CSV), each query
strategy asks it for labels round by round, and the learning curves show how many labels each strategy needs
(mlcore.active.simulation). The run is recorded so its curves can be viewed on a page."""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from labeling.models import Dataset, FeatureSet, Galaxy, Simulation
from labeling.services.imports.common import ImportFailed, csv_rows
from labeling.services.labelling.queue_inputs import vote_questions_of


class OracleError(ValueError):
    """The oracle CSV cannot be used; the message names the file, row and column."""


def oracle_read(*, path: Path, dataset: Dataset) -> dict[int, str]:
    """Galaxy id -> label, from a CSV with a ``label`` column and an ``id`` or ``file`` column (the file's stem is
    the galaxy's id, as the folder import names galaxies).

    Raises:
        OracleError: for an unreadable file, missing columns, a row without a label, or when no row matches a
            galaxy of the dataset.
    """
    known = dict(Galaxy.objects.filter(dataset=dataset).values_list("external_id", "id"))
    labels: dict[int, str] = {}
    faults: list[str] = []
    try:
        rows = list(csv_rows(path, required=["label"]))
    except ImportFailed as error:
        raise OracleError("; ".join(error.problems)) from None
    if rows and "id" not in rows[0][1] and "file" not in rows[0][1]:
        raise OracleError(f"{path.name}, row 1: needs an 'id' or a 'file' column to match the galaxies")
    unmatched = 0
    for number, values, fault in rows:
        if fault:
            faults.append(fault)
            continue
        identifier = values.get("id") or Path(values.get("file", "")).stem
        if not values["label"]:
            faults.append(f"{path.name}, row {number}, column 'label': empty")
            continue
        galaxy_id = known.get(identifier)
        if galaxy_id is None:
            unmatched += 1
            continue
        labels[galaxy_id] = values["label"]
    if faults:
        raise OracleError("; ".join(faults[:10]) + (f" (and {len(faults) - 10} more)" if len(faults) > 10 else ""))
    if not labels:
        raise OracleError(f"{path.name}: none of its {len(rows)} rows matches a galaxy of dataset {dataset.name!r} "
                          "(matched by the 'id' column, else the stem of 'file')")
    return labels


def simulation_run(*, dataset: Dataset, feature_set: FeatureSet, oracle: Path, strategies: list[str],
                   initial: int, step: int, rounds: int, seeds: list[int], out_dir: Path, test_fraction: float = 0.25,
                   start: str = "shared", progress: Callable[[str, int, int], None] | None = None,
                   user=None) -> Simulation:
    """Run every strategy (random always included) against the oracle on the feature set's vectors, once per seed
    (mlcore.active.simulation.simulate_seeds), write learning_curves.json and learning_curves.png into ``out_dir``
    and record the run: mean curves with their spread, and the verdict over the seeds (mlcore.active.curves).

    Raises:
        OracleError: for an unusable oracle CSV.
        ValueError: for an unknown strategy, or fewer than two classes among the matched galaxies.
    """
    from mlcore.active.plot import write_results
    from mlcore.active.simulation import simulate_seeds
    from mlcore.features.store import FeatureStore

    labels = oracle_read(path=oracle, dataset=dataset)
    store = FeatureStore.open(feature_set.store_dir)
    ids = np.array(sorted(labels), dtype=np.int64)
    ids = ids[store.has(ids)]
    if len({labels[int(g)] for g in ids}) < 2:
        raise ValueError(f"{oracle.name}: the galaxies with feature vectors hold fewer than two classes")
    y = np.array([labels[int(g)] for g in ids])
    vote_questions = vote_questions_of(dataset, ids) if "disagreement" in strategies or "combined" in strategies \
        else None
    result = simulate_seeds(store.get(ids).astype(np.float32), y, strategies=strategies, initial=initial, step=step,
                            rounds=rounds, seeds=seeds, test_fraction=test_fraction, start=start,
                            progress=progress, vote_questions=vote_questions or None)
    result["parameters"].update(dataset=dataset.name, feature_set=feature_set.pk,
                                model_version=feature_set.model_version.name, oracle=str(oracle))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_results(result, out_dir)
    return Simulation.objects.create(
        dataset=dataset, feature_set=feature_set, oracle=str(oracle), parameters=result["parameters"],
        curves=result["curves"], savings=result["savings"], seconds=result["seconds"],
        out_dir=str(out_dir.resolve()), created_by=user)
