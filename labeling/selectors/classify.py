"""Reads for the volunteers' pages: the datasets open for classification and a volunteer's count."""

from django.db.models import Count, Q

from labeling.models import ClassifyPolicy, Subject, VolunteerClassification


def classify_choices() -> list[dict]:
    """Each dataset volunteers classify, with its galaxies still open and retired."""
    policies = list(ClassifyPolicy.objects.select_related("dataset", "tree").order_by("dataset__name"))
    counts = {row["dataset"]: row for row in Subject.objects.filter(
        dataset__in=[p.dataset_id for p in policies]).values("dataset").annotate(
        open=Count("pk", filter=Q(retired_at__isnull=True)), retired=Count("pk", filter=Q(retired_at__isnull=False)))}
    return [{"policy": policy, "open": counts.get(policy.dataset_id, {}).get("open", 0),
             "retired": counts.get(policy.dataset_id, {}).get("retired", 0)} for policy in policies]


def volunteer_count(*, policy: ClassifyPolicy, volunteer_id: str) -> int:
    """How many galaxies of the dataset this volunteer has classified here."""
    return VolunteerClassification.objects.filter(galaxy__dataset=policy.dataset, tree=policy.tree,
                                                  volunteer_id=volunteer_id,
                                                  source=VolunteerClassification.Source.WEB).count()
