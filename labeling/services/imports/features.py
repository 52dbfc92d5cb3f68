"""Feature vectors computed elsewhere (an outside model: Zoobot, a survey pipeline) imported as a feature set.

The vectors land in a feature store like extracted ones (float16, mlcore.features.store), under a ModelVersion that
stands for the outside model (weights "imported": no backbone, nothing is ever extracted from it), so the neighbour
index, clusterings, maps, the probability model and the queues use them as they use extracted features. Which
feature set a dataset uses is its active version's: ``use`` makes the imported model the dataset's active version
at once (model_version_activate, recorded in its activation history like any switch); activating it later from the
Training page builds its index first (services/learning/activation.py).

Nothing is written unless every row passed: the vectors are streamed into a new store in a temporary folder beside
the real one, chunk by chunk (memory stays bounded by the chunk, whatever the file's size), and the folder is moved
into place, in the same step as the database rows, only once the whole file was read without a problem. Importing
again under the same name replaces the vectors of the galaxies in the file and keeps the others.
"""

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from labeling.models import Dataset, FeatureSet, Galaxy, ModelVersion
from labeling.services.imports.common import CONTROL_CHARACTERS, problem
from labeling.services.imports.reports import ImportFailed, Progress, imports_take_turns, no_progress
from labeling.services.learning.features import STORE_DTYPE
from labeling.services.learning.model_versions import model_version_activate
from mlcore.features.vector_rows import Problem

MAX_PROBLEMS = 1000  # a file of the wrong dataset fails on every row: stop reading once this many are listed
LOOKUP_BATCH = 5000  # external ids per query (SQLite allows some thousands of parameters)
NAME_MAX = ModelVersion._meta.get_field("name").max_length


@dataclass
class FeatureImportReport:
    dataset: str
    name: str
    feature_set: int
    dim: int
    imported: int  # vectors read from the file
    kept: int  # vectors of an earlier import under the same name, of galaxies the file does not hold
    count: int  # vectors in the feature set now
    used: bool  # made the dataset's active version

    def summary(self) -> str:
        kept = f", {self.kept:,} earlier vectors kept" if self.kept else ""
        used = "; now the features dataset uses" if self.used else ""
        return (f"dataset {self.dataset!r}: {self.imported:,} {self.dim}-d vectors imported as {self.name!r}{kept}; "
                f"feature set #{self.feature_set} holds {self.count:,}{used}")


def dataset_for_import(name: str) -> Dataset:
    """The dataset an import of model outputs goes into: it must exist, since the ids name its galaxies."""
    dataset = Dataset.objects.filter(name=name.strip()).first() or Dataset.objects.filter(slug=name.strip()).first()
    if dataset is None:
        raise ImportFailed([f"no dataset {name!r}: import its galaxies first (the ids name its galaxies)"])
    return dataset


def model_name_checked(name: str, *, field: str = "--name") -> str:
    """``name`` stripped, when it can name an outside model. Raises ImportFailed."""
    name = name.strip()
    if not name:
        raise ImportFailed([f"{field}: the outside model needs a name"])
    if len(name) > NAME_MAX or CONTROL_CHARACTERS.search(name):
        raise ImportFailed([f"{field} {name[:40]!r}: at most {NAME_MAX} characters, no control characters"])
    return name


def galaxy_keys(dataset: Dataset, external_ids: list[str]) -> dict[str, int]:
    """External id -> galaxy id, for those of ``external_ids`` the dataset holds: one query on PostgreSQL, else a
    query per LOOKUP_BATCH."""
    unique = list(dict.fromkeys(external_ids))
    if connection.vendor == "postgresql" and unique:
        # One array parameter rather than thousands of placeholders: 16k ids in 0.06 s instead of 0.21 s.
        table, quote = Galaxy._meta.db_table, connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {quote('external_id')}, {quote('id')} FROM {quote(table)} "
                           f"WHERE {quote('dataset_id')} = %s AND {quote('external_id')} = ANY(%s)",
                           [dataset.pk, unique])
            return dict(cursor.fetchall())
    found: dict[str, int] = {}
    for start in range(0, len(unique), LOOKUP_BATCH):
        found.update(Galaxy.objects.filter(dataset=dataset, external_id__in=unique[start:start + LOOKUP_BATCH])
                     .values_list("external_id", "pk"))
    return found


def features_import(*, dataset_name: str, name: str, path: Path, ids: Path | None = None, id_column: str = "id",
                    use: bool = False, user=None, progress: Progress = no_progress) -> FeatureImportReport:
    """Import the vectors of ``path`` (an .npy array with its ``ids`` file, a CSV or a Parquet file with
    ``id_column``) as the features of the outside model ``name`` for the dataset's galaxies.

    Raises:
        ImportFailed: naming every problem by file, row and column (unknown or repeated ids, rows of another
            length, NaN or infinite values, a dimension other than the one the name already has); nothing written.
    """
    from mlcore.features.store import FeatureStore
    from mlcore.features.vector_files import VectorFileError, open_vector_file

    path = Path(path)
    dataset = dataset_for_import(dataset_name)
    name = model_name_checked(name)
    version = ModelVersion.objects.filter(name=name).first()
    if version is not None and not version.is_imported:
        raise ImportFailed([f"--name {name!r}: a model version whose features are extracted here has that name; "
                            "choose another"])
    try:
        vectors = open_vector_file(path, ids=ids, id_column=id_column)
    except VectorFileError as exc:
        raise ImportFailed([str(exc)]) from None
    held = FeatureSet.objects.filter(model_version=version).values_list("dims", flat=True).first() \
        if version is not None else None
    if held is not None and held != vectors.dim:
        raise ImportFailed([f"{path.name}: {vectors.dim}-d vectors, but the features imported as {name!r} are "
                            f"{held}-d; import them under another name"])
    parent = Path(settings.GALAXY_FEATURES_ROOT) / dataset.slug
    parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".import-", dir=parent))
    try:
        store = FeatureStore.create(temporary, dim=vectors.dim, dtype=STORE_DTYPE)
        imported = _stream(vectors, dataset, store, path.name, progress)
        previous = FeatureSet.objects.filter(model_version=version, dataset=dataset).first() if version else None
        kept = _keep_earlier(previous, store) if previous is not None else 0
        progress(1, 1, "saving")
        with transaction.atomic():
            imports_take_turns()  # two imports under one new name: the second finds the first's version
            version = ModelVersion.objects.filter(name=name, weights=ModelVersion.Weights.IMPORTED).first() or \
                ModelVersion.objects.create(name=name, weights=ModelVersion.Weights.IMPORTED,
                                            status=ModelVersion.Status.READY, created_by=user)
            feature_set, _ = FeatureSet.objects.get_or_create(
                model_version=version, dataset=dataset, rotation_invariant=False,
                defaults={"store_path": f"{dataset.slug}/imported-{version.pk}", "dims": vectors.dim,
                          "dtype": STORE_DTYPE})
            # The vectors changed: an index built on the old ones would answer for vectors that are gone.
            FeatureSet.objects.filter(pk=feature_set.pk).update(
                count=len(store), source=path.name[:300], failed={}, index_kind="", index_count=0,
                index_recall=None, index_built_at=None)
            _move_into_place(temporary, feature_set)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)  # gone already when it was moved into place
    if use:
        model_version_activate(version=version, dataset=dataset, user=user)
    return FeatureImportReport(dataset=dataset.name, name=name, feature_set=feature_set.pk, dim=vectors.dim,
                               imported=imported, kept=kept, count=len(store), used=use)


def _stream(vectors, dataset: Dataset, store, file_name: str, progress: Progress) -> int:
    """Check every row and append the good ones to ``store``; the rows appended. Raises ImportFailed listing
    every bad row (up to MAX_PROBLEMS), sorted by row."""
    found, stored_rows, appended = [], [], 0
    progress(0, vectors.total or 0, "checking and storing vectors")
    for chunk in vectors.chunks(found):
        keys = galaxy_keys(dataset, chunk.ids)
        pks = np.array([keys.get(external_id, -1) for external_id in chunk.ids], dtype=np.int64)
        good = pks >= 0
        for i in np.flatnonzero(~good):
            found.append(_problem(chunk.rows[i], vectors.id_column,
                                  f"no galaxy {chunk.ids[i]!r} in dataset {dataset.name!r}"))
        good &= _first_times(pks, chunk, store, stored_rows, vectors.id_column, found)
        # Stored even after a problem (the store is thrown away then): a repeat further on is found in the store.
        if good.any():
            store.append(pks[good], chunk.vectors[good])
            stored_rows.append(chunk.rows[good])
            appended += int(good.sum())
        done = int(chunk.rows[-1]) if len(chunk.rows) else 0
        progress(done, vectors.total or 0, "checking and storing vectors")
        if len(found) >= MAX_PROBLEMS:
            found.append(_problem(done, None, f"stopped reading after {MAX_PROBLEMS} problems"))
            break
    if found:
        raise ImportFailed([_line(file_name, item) for item in sorted(found, key=lambda item: item.row)])
    if appended == 0:
        raise ImportFailed([f"{file_name}: holds no vectors"])
    return appended


def _first_times(pks: np.ndarray, chunk, store, stored_rows: list, id_column: str, found: list) -> np.ndarray:
    """Which rows name their galaxy for the first time in the file; a problem for each repeat, naming the row that
    named it first (earlier in this chunk, or stored from an earlier chunk)."""
    first = np.ones(len(pks), bool)
    seen: dict[int, int] = {}
    earlier = store.has(pks) if len(store) else np.zeros(len(pks), bool)
    for i, pk in enumerate(pks.tolist()):
        if pk < 0:
            continue
        if pk in seen or earlier[i]:
            where = seen.get(pk) or _stored_row(store, stored_rows, pk)
            found.append(_problem(chunk.rows[i], id_column, f"{chunk.ids[i]!r} again (first in row {where})"))
            first[i] = False
        else:
            seen[pk] = int(chunk.rows[i])
    return first


def _stored_row(store, stored_rows: list, pk: int) -> int:
    at = int(np.flatnonzero(np.asarray(store.keys()) == pk)[0])
    return int(np.concatenate(stored_rows)[at])


def _problem(row, column: str | None, message: str) -> Problem:
    return Problem(int(row), column, message)


def _line(file_name: str, item) -> str:
    return problem(f"{file_name}, row {item.row}", item.column, item.message)


def _keep_earlier(previous: FeatureSet, store) -> int:
    """Copy the vectors of an earlier import under the same name whose galaxies the file does not hold."""
    from mlcore.features.store import FeatureStore

    if not (previous.store_dir / "meta.json").exists():
        return 0
    kept = 0
    for keys, old in FeatureStore.open(previous.store_dir).iter_batches():
        keep = ~store.has(keys)
        if keep.any():
            store.append(keys[keep], old[keep])
            kept += int(keep.sum())
    return kept


def _move_into_place(temporary: Path, feature_set: FeatureSet) -> None:
    """Put the new store where the feature set's store is: the last step of the import's transaction, so nothing
    after it can roll the rows back. The old store and index are moved aside first (and back should the move fail),
    then deleted once the transaction commits."""
    target, index = feature_set.store_dir, feature_set.index_file
    aside = target.parent / f".replaced-{uuid.uuid4().hex}"
    aside.mkdir()
    had_store, had_index = target.exists(), index.exists()
    try:
        if had_store:
            os.replace(target, aside / "store")
        if had_index:
            os.replace(index, aside / "index")
        os.replace(temporary, target)
    except BaseException:
        if had_store and (aside / "store").exists():
            os.replace(aside / "store", target)
        if had_index and (aside / "index").exists():
            os.replace(aside / "index", index)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    transaction.on_commit(lambda: shutil.rmtree(aside, ignore_errors=True))
