"""Imports of an outside model's outputs (feature vectors, class probabilities) as background jobs, started by
admins over the API: the same importers as `manage.py import_features` and `manage.py import_predictions`, on files
under GALAXY_IMPORT_ROOT, as the catalogue imports of labeling/services/imports/jobs.py (whose path checks these
reuse: a file of a million vectors does not travel through a browser upload either)."""

from labeling.models import Dataset, Job, LabelSchema
from labeling.services.imports.features import FeatureImportReport, features_import, model_name_checked
from labeling.services.imports.jobs import ImportArgumentError, ImportProgress, import_source
from labeling.services.imports.predictions import PredictionImportReport, predictions_import
from labeling.services.imports.reports import ImportFailed
from labeling.services.jobs.lifecycle import JobReporter, job_create

FEATURE_SUFFIXES = (".npy", ".csv", ".csv.gz", ".parquet", ".pq")


def _dataset(name: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name.strip()).first()
    if dataset is None:
        raise ImportArgumentError("dataset", f"no dataset {name!r}: import its galaxies first")
    return dataset


def _name(name: str) -> str:
    try:
        return model_name_checked(name, field="name")
    except ImportFailed as exc:
        raise ImportArgumentError("name", "; ".join(exc.problems)) from None


def features_job_start(*, path: str, dataset_name: str, name: str, ids: str = "", id_column: str = "id",
                       use: bool = False, user=None) -> Job:
    """Queue an import of the vectors in ``path`` (and the ids file ``ids`` of an .npy array), both relative to
    GALAXY_IMPORT_ROOT, as the features of the outside model ``name``.

    Raises:
        ImportArgumentError: for a missing dataset, a bad name, a path outside the import folder, a file that is no
            vector file, an .npy array without its ids file. JobConflict: when the same import is queued or running.
    """
    dataset, name = _dataset(dataset_name), _name(name)
    source = import_source(path)
    if not source.name.lower().endswith(FEATURE_SUFFIXES):
        raise ImportArgumentError("path", f"{path!r} is not a vector file ({', '.join(FEATURE_SUFFIXES)})")
    if source.name.lower().endswith(".npy") and not ids:
        raise ImportArgumentError("ids", "an .npy array holds no ids: name its ids file (.txt or .csv)")
    if ids:
        import_source(ids, field="ids")
    arguments = {"path": path, "ids": ids, "id_column": id_column or "id", "dataset_name": dataset.name,
                 "name": name, "use": bool(use)}
    return job_create(kind=Job.Kind.IMPORT_FEATURES, arguments=arguments, dataset=dataset, user=user)


def predictions_job_start(*, path: str, dataset_name: str, schema: str, name: str, id_column: str = "id",
                          use: bool = False, user=None) -> Job:
    """Queue an import of the class probabilities in the CSV ``path`` (relative to GALAXY_IMPORT_ROOT) as the
    predictions of the outside model ``name`` for ``schema``.

    Raises:
        ImportArgumentError: for a missing dataset or schema, a bad name, a path outside the import folder.
            JobConflict: when the same import is queued or running.
    """
    dataset, name = _dataset(dataset_name), _name(name)
    if not LabelSchema.objects.filter(name=schema).exists():
        raise ImportArgumentError("schema", f"no label schema {schema!r}")
    import_source(path)
    arguments = {"path": path, "id_column": id_column or "id", "dataset_name": dataset.name, "schema": schema,
                 "name": name, "use": bool(use)}
    return job_create(kind=Job.Kind.IMPORT_PREDICTIONS, arguments=arguments, dataset=dataset, user=user)


def outside_job_run(job: Job, reporter: JobReporter) -> dict:
    """The work of an import_features or import_predictions job (labeling.tasks): the importer, its report as the
    job's result. The paths are checked again: the folder may have changed since the job was queued."""
    arguments = job.arguments
    path = import_source(arguments["path"])
    progress = ImportProgress(job.pk)
    try:
        if job.kind == Job.Kind.IMPORT_FEATURES:
            ids = import_source(arguments["ids"], field="ids") if arguments.get("ids") else None
            report: FeatureImportReport | PredictionImportReport = features_import(
                dataset_name=arguments["dataset_name"], name=arguments["name"], path=path, ids=ids,
                id_column=arguments["id_column"], use=arguments["use"], user=job.created_by, progress=progress)
        else:
            report = predictions_import(
                dataset_name=arguments["dataset_name"], schema_name=arguments["schema"], name=arguments["name"],
                path=path, id_column=arguments["id_column"], use=arguments["use"], progress=progress)
    finally:
        progress.close()
    return {**vars(report), "summary": report.summary()}
