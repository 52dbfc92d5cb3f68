"""How each expert's labels compare with labels known from elsewhere (a published catalogue, or the demo's
held-back oracle): the share agreed, Cohen's kappa and the most frequent confusions."""

from collections import Counter
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from labeling.models import Dataset, ExpertLabel, LabelSchema


@dataclass
class KnownLabelCheck:
    expert: object
    compared: int  # the expert's current labels on galaxies with a known label
    agreed: int
    kappa: float | None
    confusions: list[tuple[str, str, int]]  # (known, given, how often), most frequent first

    @property
    def accuracy(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


def labels_against_known(*, schema: LabelSchema, dataset: Dataset, known: dict[int, str]) -> list[KnownLabelCheck]:
    """One row per expert with a current label on a galaxy of ``known`` (galaxy id -> class key), by user name.
    Imported labels (no expert) are left out: they are usually where the known labels came from. Two queries."""
    from mlcore.votes.agreement import cohen_kappa

    given: dict[int, dict[int, str]] = {}
    rows = ExpertLabel.objects.filter(schema=schema, galaxy__dataset=dataset, superseded_at__isnull=True,
                                      expert__isnull=False, galaxy_id__in=list(known))
    for expert_id, galaxy_id, key in rows.values_list("expert_id", "galaxy_id", "label_class__key"):
        given.setdefault(expert_id, {})[galaxy_id] = key
    users = get_user_model().objects.in_bulk(list(given))
    checks = []
    for expert_id, labels in given.items():
        truth, theirs = [known[g] for g in labels], list(labels.values())
        confusions = Counter((t, g) for t, g in zip(truth, theirs, strict=True) if t != g)
        checks.append(KnownLabelCheck(
            expert=users[expert_id], compared=len(labels), agreed=sum(t == g for t, g in zip(truth, theirs,
                                                                                           strict=True)),
            kappa=cohen_kappa(truth, theirs) if len(set(truth) | set(theirs)) > 1 else None,
            confusions=[(t, g, n) for (t, g), n in confusions.most_common()]))
    return sorted(checks, key=lambda check: check.expert.get_username())
