"""Active learning: how each dataset's queues are chosen, the probability model on the current features, the
galaxies waiting in each expert's queue (with why they were chosen), resolutions of disagreements, and the
recorded active-learning simulations."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from labeling.models.catalogue import Dataset, Galaxy
from labeling.models.labels import LabelClass, LabelSchema
from labeling.models.ml import FeatureSet, ModelVersion

# The names of mlcore.active.query.STRATEGIES, kept here as choices so that migrations do not import mlcore.
# The first is mlcore.active.query.DEFAULT_STRATEGY (a test checks they agree).
STRATEGY_CHOICES = [
    ("cluster_margin", "cluster-margin (uncertain and diverse; the default)"),
    ("combined", "combined score (uncertainty + typicality + volunteer disagreement)"),
    ("margin", "margin (smallest gap between the two likeliest classes)"),
    ("least_confidence", "least confidence"),
    ("entropy", "entropy"),
    ("bald", "BALD (disagreement of an ensemble)"),
    ("typiclust", "typical (TypiClust)"),
    ("kcenter", "k-center greedy (core-set)"),
    ("disagreement", "volunteer disagreement"),
    ("random", "random"),
]


class QueuePolicy(models.Model):
    """How the labelling queues of one dataset are filled; an admin sets it."""

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="queue_policy")
    strategy = models.CharField(max_length=20, choices=STRATEGY_CHOICES, default=STRATEGY_CHOICES[0][0])
    weights = models.JSONField(default=dict, blank=True,
                               help_text='Weights of the combined score, e.g. {"margin": 1, "typicality": 0.5, '
                                         '"disagreement": 0.5}; empty for the defaults.')
    batch_size = models.PositiveIntegerField(default=50, help_text="Galaxies put in each expert's queue per build.")
    double_label_share = models.FloatField(
        default=0.10, help_text="Share of each queue also given to another expert, to measure agreement.")
    refit_every = models.PositiveIntegerField(
        default=20, help_text="New labels after which the probability model is refit and the queues rebuilt.")
    labels_since_refit = models.PositiveIntegerField(default=0, editable=False)
    min_labels = models.PositiveIntegerField(
        default=20, help_text="Labels the model needs before uncertainty replaces representative sampling.")
    consensus_min_agreement = models.FloatField(
        default=0.8, help_text="Volunteer consensus labels at least this strong also train the probability model.")
    seed = models.IntegerField(default=0)
    predictions = models.ForeignKey(
        "Classifier", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", limit_choices_to=~Q(name=""),
        help_text="Imported predictions whose probabilities the uncertainty strategies read instead of the "
                  "probability model's, for their schema; empty: the probability model's.")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "queue policies"
        constraints = [
            models.CheckConstraint(condition=Q(double_label_share__gte=0, double_label_share__lte=1),
                                   name="queue_policy_share_is_a_fraction"),
        ]

    def __str__(self):
        return f"{self.dataset}: {self.strategy}"


class Classifier(models.Model):
    """A probability model (mlcore.active.head.ProbabilityHead) fitted on one feature set for one schema, or an
    outside model's predictions imported under its ``name`` (services/imports/predictions.py): those have a dataset
    and a source file but no feature set and no head file."""

    feature_set = models.ForeignKey(FeatureSet, null=True, blank=True, on_delete=models.CASCADE,
                                    related_name="classifiers")
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="classifiers")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                help_text="Imported predictions: the dataset they are of.")
    name = models.CharField(max_length=200, blank=True, help_text="Imported predictions: the outside model's name.")
    source = models.CharField(max_length=300, blank=True, help_text="Imported predictions: the file they came from.")
    path = models.CharField(max_length=500, blank=True, help_text="The fitted head, pickled.")
    classes = models.JSONField(default=list)
    n_labels = models.PositiveIntegerField(default=0)
    n_expert = models.PositiveIntegerField(default=0)
    n_consensus = models.PositiveIntegerField(default=0)
    calibrated = models.BooleanField(default=False)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "schema", "name"], condition=~Q(name=""),
                                    name="classifier_imported_unique"),
        ]

    def __str__(self):
        if self.is_imported:
            return f"{self.name} (imported)"
        return f"head #{self.pk} · {self.n_labels} labels"

    @property
    def is_imported(self) -> bool:
        return bool(self.name)


class Prediction(models.Model):
    """The class probabilities a classifier gives one galaxy."""

    classifier = models.ForeignKey(Classifier, on_delete=models.CASCADE, related_name="predictions")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="predictions")
    label_class = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="+")
    probability = models.FloatField(help_text="Of the likeliest class.")
    probabilities = models.JSONField(help_text="Class key to probability.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["classifier", "galaxy"], name="prediction_unique")]
        indexes = [models.Index(fields=["galaxy", "classifier"])]

    def __str__(self):
        return f"{self.galaxy}: {self.probability:.2f}"


class QueueEntry(models.Model):
    """A galaxy waiting in one expert's queue, and why it was chosen."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "labelled"
        SKIPPED = "skipped", "skipped"

    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="queue_entries")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="queue_entries")
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="queue_entries")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="queue_entries")
    rank = models.PositiveIntegerField(help_text="1 is served first.")
    strategy = models.CharField(max_length=20, help_text="The strategy that chose it (a cold start may differ "
                                                         "from the one asked for).")
    requested_strategy = models.CharField(max_length=20)
    score = models.FloatField()
    components = models.JSONField(default=dict, blank=True, help_text="Each score that went into the choice.")
    double_label = models.BooleanField(default=False, help_text="Also given to another expert on purpose.")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    classifier = models.ForeignKey(Classifier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rank", "id"]
        verbose_name_plural = "queue entries"
        indexes = [models.Index(fields=["expert", "schema", "dataset", "status", "rank"])]
        constraints = [
            models.UniqueConstraint(fields=["expert", "schema", "galaxy"], condition=Q(status="pending"),
                                    name="queue_entry_one_pending_per_galaxy"),
        ]

    def __str__(self):
        return f"{self.galaxy} for {self.expert} (#{self.rank}, {self.strategy})"


class LabelResolution(models.Model):
    """An admin's decision on a galaxy the experts disagree about; it becomes the galaxy's expert label."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="resolutions")
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="resolutions")
    label_class = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="resolutions")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="resolutions")
    resolved_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-resolved_at"]
        constraints = [models.UniqueConstraint(fields=["galaxy", "schema"], name="resolution_one_per_galaxy")]

    def __str__(self):
        return f"{self.galaxy}: {self.label_class} (resolved by {self.resolved_by})"


class Simulation(models.Model):
    """One run of simulate_active_learning: learning curves of each strategy against an oracle's labels."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="simulations")
    feature_set = models.ForeignKey(FeatureSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    oracle = models.CharField(max_length=500, help_text="The labels file the strategies queried.")
    parameters = models.JSONField(default=dict)
    curves = models.JSONField(default=dict)
    savings = models.JSONField(default=dict)
    seconds = models.JSONField(default=dict)
    out_dir = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"simulation #{self.pk} on {self.dataset}"
