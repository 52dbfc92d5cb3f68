"""Forms of the Jobs page that import catalogues from files on the server (labeling/services/imports/jobs.py)."""

from django import forms

from labeling.services.imports.jobs import (
    PANOPTES,
    ImportArgumentError,
    import_dataset_name,
    import_root,
    import_source,
    panoptes_arguments,
)

# The <datalist> of the folders and catalogue files under GALAXY_IMPORT_ROOT: one per page, listed once by the view
# (labeling/views/jobs.py) however many path boxes offer it.
SOURCES_LIST_ID = "import-sources"


class SourceInput(forms.TextInput):
    """A text box that suggests what is in the import folder (SOURCES_LIST_ID); any other path may be typed."""

    def __init__(self, attrs=None):
        super().__init__({"list": SOURCES_LIST_ID, "autocomplete": "off", **(attrs or {})})


class ImportForm(forms.Form):
    """What both imports ask: the file or folder, its layout, the dataset to import into, bad rows' fate."""

    field_order = ["path", "format", "labels", "dataset", "schema", "skip_bad"]

    path = forms.CharField(max_length=1000, widget=SourceInput)
    format = forms.ChoiceField()
    dataset = forms.CharField(max_length=200, label="Dataset", help_text="Its name; created when missing.")
    skip_bad = forms.BooleanField(required=False, label="Skip bad rows",
                                  help_text="Import the good rows and list the bad ones, instead of failing.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["path"].help_text = f"{self.path_help}, relative to the import folder {import_root()}."

    def clean_path(self):
        return self._source(self.cleaned_data["path"], "path")

    # The service's own checks (labeling/services/imports/jobs.py), shown on their field before anything is queued.
    def clean_dataset(self):
        try:
            return import_dataset_name(self.cleaned_data["dataset"])
        except ImportArgumentError as exc:
            raise forms.ValidationError(exc.message) from None

    @staticmethod
    def _source(value: str, field: str) -> str:
        try:
            import_source(value, field=field)
        except ImportArgumentError as exc:
            raise forms.ValidationError(exc.message) from None
        return value


class ImportGalaxiesForm(ImportForm):
    path_help = "A folder of images with labels.csv, a Galaxy10 DECaLS .h5 file or the Galaxy Zoo example set's folder"
    format = forms.ChoiceField(choices=[("folder", "folder of images with a CSV"),
                                        ("galaxy10-h5", "Galaxy10 DECaLS HDF5"),
                                        ("gz-examples", "Galaxy Zoo example set")])
    labels = forms.CharField(max_length=1000, required=False, widget=SourceInput, label="Labels CSV",
                             help_text="When it is not labels.csv in the folder.")
    schema = forms.CharField(max_length=100, required=False, label="Label schema",
                             help_text="Folder: default named after the dataset; Galaxy10: galaxy10.")

    def clean_labels(self):
        labels = self.cleaned_data["labels"]
        return self._source(labels, "labels") if labels else ""


class ImportVotesForm(ImportForm):
    path_help = "A vote catalogue or a Zooniverse classification export (.csv or .csv.gz)"
    field_order = [*ImportForm.field_order, "mapping", "workflow_id", "workflow_versions", "subject_keys"]
    format = forms.ChoiceField(choices=[("gz2-table", "GZ2 table (Hart et al. 2016 layout)"),
                                        ("gz2-kaggle", "Kaggle Galaxy Zoo solutions"),
                                        ("gz-decals", "GZ DECaLS volunteer catalogue"),
                                        (PANOPTES, "Zooniverse (Panoptes) classification export")])
    mapping = forms.CharField(max_length=1000, required=False, label="Panoptes mapping",
                              help_text="Zooniverse exports only: which task and answer is which question and answer "
                                        "of a tree; a shipped one (gz_decals, gz2) or a mapping file in the import "
                                        "folder.")
    workflow_id = forms.IntegerField(required=False, min_value=1, label="Workflow id",
                                     help_text="Zooniverse exports only; default: the mapping's.")
    workflow_versions = forms.CharField(max_length=200, required=False, label="Workflow versions",
                                        help_text="Zooniverse exports only: e.g. 66 (every 66.x) or 66.425, comma "
                                                  "separated; default: the mapping's.")
    subject_keys = forms.CharField(max_length=500, required=False, label="Subject keys",
                                   help_text="Zooniverse exports only: the subject_data keys holding the galaxy's "
                                             "id, comma separated; default: the mapping's, else the usual ones.")

    def clean(self):
        cleaned = super().clean()
        given = {"mapping": cleaned.get("mapping", ""), "workflow_id": cleaned.get("workflow_id"),
                 "workflow_versions": _listed(cleaned.get("workflow_versions", "")),
                 "subject_keys": _listed(cleaned.get("subject_keys", ""))}
        if cleaned.get("format") == PANOPTES:
            # The service's own check of the mapping (a shipped name or a file under the import folder).
            try:
                cleaned["panoptes"] = panoptes_arguments(given)
            except ImportArgumentError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        elif given["mapping"] or given["workflow_id"] or given["workflow_versions"] or given["subject_keys"]:
            self.add_error("mapping", "The Panoptes options are for Zooniverse classification exports only.")
        return cleaned


def _listed(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]
