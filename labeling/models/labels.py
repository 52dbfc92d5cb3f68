"""Label schemas, the consensus rules that map votes to their classes, and consensus and expert labels."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from labeling.models.catalogue import Galaxy
from labeling.models.trees import DecisionTree


class LabelSchema(models.Model):
    """A set of classes experts choose from, e.g. Galaxy10's ten classes."""

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.title or self.name


class LabelClass(models.Model):
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="classes")
    key = models.CharField(max_length=100, help_text="Stable identifier, as it appears in label files.")
    name = models.CharField(max_length=200, help_text="Display name.")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["schema", "order", "key"]
        verbose_name_plural = "label classes"
        constraints = [models.UniqueConstraint(fields=["schema", "key"], name="label_class_unique_key")]

    def __str__(self):
        return self.name


def default_fractions() -> list[str]:
    return ["raw"]


class ConsensusRule(models.Model):
    """How a decision tree's vote fractions map to a schema's class (see mlcore.votes.tree.consensus)."""

    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="rules")
    tree = models.ForeignKey(DecisionTree, on_delete=models.CASCADE, related_name="rules")
    name = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    default_threshold = models.FloatField(default=0.6)
    min_votes = models.PositiveIntegerField(default=10, help_text="Fewer votes on the first question: no consensus.")
    conditions = models.JSONField(
        help_text='{"class key": [{"question": "q", "answers": ["a"], "threshold": 0.6}, ...], ...}'
    )
    uncertain_class_key = models.CharField(max_length=100, default="uncertain")
    fractions = models.JSONField(
        default=default_fractions,
        help_text='Kinds of vote fractions the rule reads, in fallback order: "debiased", "weighted", "raw". '
                  "A question lacking one falls back to the next; raw fractions are always the last resort.",
    )

    class Meta:
        ordering = ["schema", "name"]
        constraints = [models.UniqueConstraint(fields=["schema", "name"], name="consensus_rule_unique_name")]

    def __str__(self):
        return f"{self.schema.name}:{self.name}"


class ConsensusLabel(models.Model):
    """The class the volunteers' votes point to under a rule. Never overwrites an expert's label."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="consensus_labels")
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="consensus_labels")
    rule = models.ForeignKey(ConsensusRule, on_delete=models.CASCADE, related_name="labels")
    label_class = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="consensus_labels")
    agreement = models.FloatField(help_text="The weakest vote fraction along the matched class's path.")
    n_votes = models.PositiveIntegerField()
    fractions_used = models.CharField(max_length=40, default="raw", help_text="The kinds of fractions that "
                                      "decided, the first question's first: 'debiased', or 'debiased, raw'.")
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["galaxy", "schema"]
        constraints = [models.UniqueConstraint(fields=["galaxy", "schema"], name="consensus_label_unique")]

    def __str__(self):
        return f"{self.galaxy}: {self.label_class}"


class ExpertLabel(models.Model):
    """An expert's class for a galaxy. A change supersedes the old row instead of editing it, so history is kept.

    Imported labels have no expert; their provenance says where they came from ("imported from labels.csv").
    """

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="expert_labels")
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="expert_labels")
    label_class = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="expert_labels")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="expert_labels"
    )
    note = models.TextField(blank=True)
    provenance = models.CharField(max_length=300, default="web")
    created_at = models.DateTimeField(default=timezone.now)
    superseded_at = models.DateTimeField(null=True, blank=True, help_text="Set when a newer label replaced this one.")

    class Meta:
        ordering = ["galaxy", "schema", "-created_at"]
        indexes = [models.Index(fields=["schema", "superseded_at"]), models.Index(fields=["expert", "created_at"]),
                   models.Index(fields=["schema", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["galaxy", "schema", "expert"],
                condition=Q(superseded_at__isnull=True, expert__isnull=False),
                name="expert_label_one_current_per_expert",
            ),
            models.UniqueConstraint(
                fields=["galaxy", "schema", "provenance"],
                condition=Q(superseded_at__isnull=True, expert__isnull=True),
                name="expert_label_one_current_per_import",
            ),
        ]

    def __str__(self):
        return f"{self.galaxy}: {self.label_class} by {self.expert or self.provenance}"

    @property
    def is_current(self) -> bool:
        return self.superseded_at is None
