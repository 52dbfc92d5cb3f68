"""Screening volunteers: the consistency weight each volunteer got when their dataset was last weighted, and the
volunteers an admin excluded. An excluded volunteer's classifications stay on record (and later ones are still
stored) but count nowhere: not in the vote summaries, the weights, the consensus or a galaxy's retirement.

A volunteer is known by their key: the classification's volunteer_id ("user:<id>", "session:<key>" on this site, or
an imported id), else "user:<id>" for a signed-in user's classification without one. Classifications with neither
cannot be told apart, and so cannot be excluded."""

from django.conf import settings
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone

USER_PREFIX = "user:"


def volunteer_key(volunteer_id: str, user_id: int | None) -> str:
    """The key a classification's volunteer is known by; "" when it names nobody."""
    return volunteer_id or (f"{USER_PREFIX}{user_id}" if user_id else "")


class ExclusionQuerySet(models.QuerySet):
    def in_force(self) -> "ExclusionQuerySet":
        return self.filter(included_at__isnull=True)


class VolunteerExclusion(models.Model):
    """An admin's decision that a volunteer's classifications do not count, with who, when and why; re-including
    them keeps the row (with who and when) as the record."""

    volunteer = models.CharField(max_length=100, help_text="The volunteer's key: user:<id>, session:<key> or an "
                                                           "imported volunteer id.")
    # Set when the key is "user:<id>", so that the user's classifications stored without a volunteer id are
    # matched in SQL too (counted() below).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    reason = models.TextField()
    excluded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                    related_name="+")
    excluded_at = models.DateTimeField(default=timezone.now)
    included_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    included_at = models.DateTimeField(null=True, blank=True)
    included_note = models.TextField(blank=True)
    # The consensus the exclusion computed again, so that including the volunteer again computes the same, even
    # where the exclusion left the dataset without a single label of the rule to find it by.
    consensus_rules = models.JSONField(default=list, blank=True, help_text="[rule id, dataset id] pairs whose "
                                                                          "consensus the exclusion recomputed.")

    objects = ExclusionQuerySet.as_manager()

    class Meta:
        ordering = ["-excluded_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["volunteer"], condition=Q(included_at__isnull=True),
                                    name="volunteer_exclusion_one_in_force"),
        ]

    def __str__(self):
        state = f"re-included {self.included_at:%Y-%m-%d}" if self.included_at else "excluded"
        return f"{self.volunteer}: {state}"

    @property
    def in_force(self) -> bool:
        return self.included_at is None


def counted(classifications: QuerySet) -> QuerySet:
    """The classifications among ``classifications`` that count: all but those of volunteers excluded now.

    Every recount (vote summaries, weights, retirement) reads classifications through this, so an exclusion holds
    for classifications stored after it as well. One query: the exclusions are subqueries.
    """
    excluded = VolunteerExclusion.objects.in_force()
    return classifications.exclude(volunteer_id__in=excluded.values("volunteer")).exclude(
        Q(volunteer_id="") & Q(user_id__in=excluded.filter(user__isnull=False).values("user")))


def is_excluded(*, volunteer_id: str, user_id: int | None) -> bool:
    """Whether the volunteer of a classification with this volunteer_id and user is excluded now."""
    key = volunteer_key(volunteer_id, user_id)
    return bool(key) and VolunteerExclusion.objects.in_force().filter(volunteer=key).exists()


class VolunteerWeight(models.Model):
    """A volunteer's consistency (Willett et al. 2013 kappa) and weight from the last weighting of a dataset's
    classifications of a tree (services/votes/weighting.py); replaced whole by each weighting."""

    dataset = models.ForeignKey("labeling.Dataset", on_delete=models.CASCADE, related_name="+")
    tree = models.ForeignKey("labeling.DecisionTree", on_delete=models.CASCADE, related_name="+")
    volunteer = models.CharField(max_length=100)
    weight = models.FloatField()
    kappa = models.FloatField(null=True, blank=True, help_text="Empty when their classifications answered nothing.")
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "tree", "volunteer"], name="volunteer_weight_unique"),
        ]

    def __str__(self):
        return f"{self.volunteer} on {self.dataset_id}/{self.tree_id}: {self.weight:.3f}"
