"""Forms of the Jobs page: what each machine-learning job needs, checked before it is queued."""

from django import forms

from labeling.models import STRATEGY_CHOICES, Clustering, Dataset, Embedding, FeatureSet, LabelSchema, ModelVersion
from labeling.services.learning.retrain import DEFAULT_EPOCHS, DEFAULT_LR, MIN_CYCLE_IMAGE_SIZE
from mlcore.weights import GALAXY_WEIGHTS


class FeatureSetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, feature_set):
        index = f", {feature_set.index_kind} index" if feature_set.has_index else ", no index yet"
        return f"#{feature_set.pk} {feature_set} ({feature_set.count} vectors{index})"


def _feature_sets():
    return FeatureSet.objects.filter(count__gt=0).select_related("dataset", "model_version").order_by(
        "dataset__name", "-updated_at")


class ExtractFeaturesForm(forms.Form):
    dataset = forms.ModelChoiceField(Dataset.objects.filter(galaxies__image__gt="").distinct().order_by("name"),
                                     help_text="Only datasets with images.")
    backbone = forms.ChoiceField(choices=ModelVersion.Backbone.choices, initial=ModelVersion.Backbone.RESNET18)
    weights = forms.ChoiceField(choices=[("galaxy", "galaxy backbone (ResNet-18 trained on real galaxies, 64 px)"),
                                         ("random", "random initialisation (seeded)"),
                                         ("imagenet", "ImageNet (only if already in torch's cache: no downloads)")],
                                initial="galaxy")
    image_size = forms.IntegerField(min_value=32, max_value=424, required=False,
                                    help_text="Pixels per side; empty: the size the weights were trained at (64 for "
                                              "the galaxy backbone), else 224.")
    seed = forms.IntegerField(initial=0, help_text="Seed of the random weights.")
    rotation_invariant = forms.BooleanField(required=False, help_text="Average over the 8 flips and quarter turns "
                                                                      "(8 times slower).")
    model_version = forms.ModelChoiceField(
        ModelVersion.objects.exclude(status__in=[ModelVersion.Status.FAILED, ModelVersion.Status.QUEUED,
                                                 ModelVersion.Status.TRAINING]),
        required=False, label="Or an existing model",
        help_text="e.g. a checkpoint registered with extract_features --weights FILE; replaces the four fields above.")


class BuildIndexForm(forms.Form):
    feature_set = FeatureSetChoiceField(queryset=_feature_sets())
    kind = forms.ChoiceField(choices=[("auto", "auto: exact for small sets, HNSW above, IVF-PQ for millions"),
                                      ("exact", "exact"), ("hnsw", "HNSW (approximate)"),
                                      ("ivfpq", "IVF-PQ (approximate, compressed)")], initial="auto")


class ClusterForm(forms.Form):
    feature_set = FeatureSetChoiceField(queryset=_feature_sets())
    method = forms.ChoiceField(choices=Clustering.Method.choices, initial=Clustering.Method.KMEANS)
    k = forms.IntegerField(min_value=2, max_value=500, initial=10, help_text="Number of clusters.")
    pca_components = forms.IntegerField(min_value=2, max_value=512, initial=50, label="PCA components")

    def clean(self):
        cleaned = super().clean()
        feature_set, k = cleaned.get("feature_set"), cleaned.get("k")
        if feature_set and k and k > feature_set.count:
            self.add_error("k", f"{k} clusters for {feature_set.count} galaxies: at most one cluster per galaxy.")
        return cleaned


class MapForm(forms.Form):
    feature_set = FeatureSetChoiceField(queryset=_feature_sets())
    method = forms.ChoiceField(choices=Embedding.Method.choices, initial=Embedding.Method.UMAP)
    schema = forms.ModelChoiceField(LabelSchema.objects.order_by("name"), required=False,
                                    help_text="For LDA: the schema whose expert labels the map separates.")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("method") == Embedding.Method.LDA and not cleaned.get("schema"):
            self.add_error("schema", "LDA needs a label schema.")
        return cleaned


def _datasets_with_images():
    return Dataset.objects.filter(galaxies__image__gt="").distinct().order_by("name")


class FitClassifierForm(forms.Form):
    dataset = forms.ModelChoiceField(_datasets_with_images(), help_text="Uses its current features.")
    schema = forms.ModelChoiceField(LabelSchema.objects.order_by("name"))
    rebuild_queues = forms.BooleanField(required=False, initial=True, help_text="Then rebuild every expert's queue.")


class BuildQueueForm(forms.Form):
    dataset = forms.ModelChoiceField(_datasets_with_images())
    schema = forms.ModelChoiceField(LabelSchema.objects.order_by("name"))
    strategy = forms.ChoiceField(choices=[("", "the dataset's queue policy"), *STRATEGY_CHOICES], required=False)


class TrainableVersionField(forms.ModelChoiceField):
    """Ready versions; each names the datasets it is active on (prefetch ``active_for``), the usual place to start."""

    def label_from_instance(self, version):
        active_on = ", ".join(dataset.name for dataset in version.active_for.all())
        return f"#{version.pk} {version.name}" + (f" (active on {active_on})" if active_on else "")


class RetrainForm(forms.Form):
    """A retrain cycle (labeling.services.learning.retrain.retrain_start); the service checks the data and the
    ranges again."""

    dataset = forms.ModelChoiceField(_datasets_with_images(), help_text="Only datasets with images.")
    schema = forms.ModelChoiceField(LabelSchema.objects.order_by("name"), required=False,
                                    empty_label="the one with the most expert labels")
    backbone = forms.ChoiceField(choices=ModelVersion.Backbone.choices, initial=ModelVersion.Backbone.RESNET18,
                                 help_text="A version to start from sets its own backbone.")
    base = TrainableVersionField(
        ModelVersion.objects.filter(status=ModelVersion.Status.READY).prefetch_related("active_for").order_by(
            "-created_at", "-pk"), required=False, label="Start from", empty_label="random initialisation (seeded)")
    image_size = forms.IntegerField(min_value=32, max_value=424, required=False,
                                    help_text=f"Pixels per side; empty: the starting version's own, at least "
                                              f"{MIN_CYCLE_IMAGE_SIZE}.")
    epochs = forms.IntegerField(min_value=1, max_value=500, initial=DEFAULT_EPOCHS)
    lr = forms.FloatField(label="Learning rate", initial=DEFAULT_LR, widget=forms.NumberInput(attrs={"step": "any"}))
    pseudo_threshold = forms.FloatField(
        label="Pseudo-label threshold", min_value=0.5, max_value=1.0, initial=0.95,
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="Unlabelled galaxies the probability model is this sure of become pseudo-labels.")
    soft_vote_weight = forms.FloatField(label="Soft-vote weight", min_value=0.0, max_value=10.0, initial=1.0,
                                        widget=forms.NumberInput(attrs={"step": "any"}),
                                        help_text="Weight of the volunteers' votes in the loss (per vote, on "
                                                  "the scale of a label's cross-entropy).")
    seed = forms.IntegerField(initial=0)
    rotation_invariant = forms.BooleanField(
        label="Rotation-invariant features", required=False, initial=True,
        help_text="Serve each galaxy's features averaged over its 8 flips and quarter turns: measured better, for 8 "
                  "times the extraction work.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The shipped galaxy backbone is where a cycle should start, once a version of it exists (extraction and
        # the demo make one); the empty choice stays random initialisation.
        galaxy = self.fields["base"].queryset.filter(weights=ModelVersion.Weights.FILE,
                                                     checkpoint=str(GALAXY_WEIGHTS)).first()
        if galaxy is not None:
            self.fields["base"].initial = galaxy.pk

    def clean_lr(self):
        lr = self.cleaned_data["lr"]
        if not 0 < lr < 1:
            raise forms.ValidationError("The learning rate must lie between 0 and 1 (exclusive).")
        return lr


class PretrainForm(forms.Form):
    """Self-supervised pretraining (SimCLR) on a dataset's images, no labels needed."""

    dataset = forms.ModelChoiceField(_datasets_with_images(), help_text="Only datasets with images.")
    backbone = forms.ChoiceField(choices=ModelVersion.Backbone.choices, initial=ModelVersion.Backbone.RESNET18)
    image_size = forms.IntegerField(min_value=32, max_value=424, initial=64, help_text="Pixels per side.")
    epochs = forms.IntegerField(min_value=1, max_value=500, initial=10)
    seed = forms.IntegerField(initial=0)
