"""Volunteers classifying in this application: how each dataset's galaxies are offered (which tree, when a galaxy
retires, how much to favour the galaxies the model is unsure of), each galaxy's state as a subject, and the galaxies
offered to each volunteer."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from labeling.models.catalogue import Dataset, Galaxy
from labeling.models.labels import ConsensusRule
from labeling.models.trees import DecisionTree


class ClassifyPolicy(models.Model):
    """How volunteers classify one dataset; an admin sets it."""

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="classify_policy")
    tree = models.ForeignKey(DecisionTree, on_delete=models.PROTECT, related_name="+")
    retire_after = models.PositiveIntegerField(
        default=20, help_text="Classifications after which a galaxy is retired (no longer offered).")
    early_rule = models.ForeignKey(
        ConsensusRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Retire a galaxy early when the volunteers' consensus under this rule and the probability "
                  "model's prediction name the same class, both confidently. Empty: no early retirement.")
    early_min_classifications = models.PositiveIntegerField(
        default=5, help_text="Classifications a galaxy needs before it can retire early.")
    early_min_agreement = models.FloatField(
        default=0.8, help_text="The volunteers' consensus must be at least this strong (0-1).")
    early_min_confidence = models.FloatField(
        default=0.9, help_text="The model's probability of that class must be at least this (0-1).")
    useful_share = models.FloatField(
        default=0.5, help_text="Share of galaxies offered for being useful to the model (uncertain or disputed); "
                               "the rest go to the least-classified galaxies, to keep coverage.")
    weight_volunteers = models.BooleanField(
        default=False, help_text="Also publish fractions with each volunteer weighted by their consistency with "
                                 "the others (Galaxy Zoo 2's user weighting), as weighted_fraction.")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "classify policies"
        constraints = [
            models.CheckConstraint(condition=Q(useful_share__gte=0, useful_share__lte=1),
                                   name="classify_policy_useful_share_is_a_fraction"),
            models.CheckConstraint(condition=Q(retire_after__gte=1), name="classify_policy_retires_after_one"),
        ]

    def __str__(self):
        return f"{self.dataset}: {self.tree.name}, retire after {self.retire_after}"


class Subject(models.Model):
    """A galaxy as the volunteers of one tree see it: how many classified it here, how useful another
    classification would be, and whether it is retired."""

    class Retired(models.TextChoices):
        COUNT = "count", "enough classifications"
        AGREEMENT = "agreement", "volunteers and model agree"
        ADMIN = "admin", "retired by an admin"

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="subjects")
    # The galaxy's dataset, kept here so that choosing the next galaxy walks one index without a join.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    tree = models.ForeignKey(DecisionTree, on_delete=models.CASCADE, related_name="subjects")
    n_classifications = models.PositiveIntegerField(default=0)
    usefulness = models.FloatField(default=0.0, help_text="0-1: how unsure the model is, or how disputed the "
                                                          "galaxy; set when the probability model is refit.")
    # A random tie-breaker fixed per subject, so that concurrent volunteers spread over equally good galaxies.
    shuffle = models.FloatField(default=0.0)
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_reason = models.CharField(max_length=10, choices=Retired.choices, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["galaxy", "tree"], name="subject_unique")]
        # Partial indexes over the galaxies still offered, in the orders the next galaxy is chosen by: a retired_at
        # column inside the index would keep PostgreSQL from reading it in order.
        indexes = [
            models.Index(fields=["dataset", "tree", "n_classifications", "shuffle"], name="subject_coverage",
                         condition=Q(retired_at__isnull=True)),
            models.Index(fields=["dataset", "tree", "-usefulness"], name="subject_usefulness",
                         condition=Q(retired_at__isnull=True)),
        ]

    def __str__(self):
        state = f"retired ({self.retired_reason})" if self.retired_at else "active"
        return f"{self.galaxy} under {self.tree.name}: {self.n_classifications}, {state}"

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None


class ClassifyOffer(models.Model):
    """A galaxy offered to one volunteer (a session or a user): the classify page takes answers only for a galaxy it
    offered to that volunteer, once, while the offer is fresh (settings.GALAXY_CLASSIFY_OFFER_TTL).

    Kept on the server rather than as a signed token carried by the page: a token proves an offer was made but not
    that it is still unused, and "once" would need a record of spent tokens anyway. One row per volunteer and galaxy
    and one indexed update to spend it; expired rows are pruned (labeling/services/votes/offers.py)."""

    policy = models.ForeignKey(ClassifyPolicy, on_delete=models.CASCADE, related_name="offers")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="+")
    # As VolunteerClassification.volunteer_id: "user:<id>" when signed in, else "session:<key>".
    volunteer_id = models.CharField(max_length=100)
    offered_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["policy", "galaxy", "volunteer_id"],
                                               name="classify_offer_unique")]
        indexes = [models.Index(fields=["offered_at"], name="classify_offer_offered_at")]

    def __str__(self):
        state = f"used {self.used_at:%Y-%m-%d %H:%M}" if self.used_at else "open"
        return f"{self.galaxy_id} offered to {self.volunteer_id} at {self.offered_at:%Y-%m-%d %H:%M}, {state}"
