"""Redshift debiasing of a dataset's own vote fractions (mlcore.votes.debias), stored beside the raw ones.

Applied only when asked (the debias_votes command): it needs each galaxy's redshift and angular size in its
catalogue metadata, and it rewrites nothing but VoteSummary.extra["debiased"] of one question, which consensus
rules reading debiased fractions then use and the galaxy page shows beside the raw fractions.
"""

from dataclasses import dataclass

from django.db import transaction

from labeling.models import Dataset, Question, VoteSummary
from mlcore.votes.debias import RedshiftDebiaser


@dataclass
class DebiasResult:
    debiased: int
    without_redshift_or_size: int

    def summary(self) -> str:
        return (f"{self.debiased} galaxies debiased, {self.without_redshift_or_size} left alone "
                f"(no redshift or size in their metadata)")


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


@transaction.atomic
def votes_debias(*, dataset: Dataset, question: Question, answer: str, redshift_key: str = "redshift",
                 size_key: str = "petroR50_r", source: str = VoteSummary.Source.AGGREGATED,
                 debiaser: RedshiftDebiaser | None = None) -> DebiasResult:
    """Debias ``answer``'s fraction of ``question`` for the dataset's galaxies with a redshift and a size.

    The other answers of the question share what is left in their raw proportions, so the debiased fractions
    still add up to 1.

    Raises:
        ValueError: for an answer the question lacks, or too few galaxies with a redshift and size to fit.
    """
    answers = list(question.answers.values_list("key", flat=True))
    if answer not in answers:
        raise ValueError(f"question {question.key!r} has no answer {answer!r}; it has {', '.join(answers)}")
    summaries = list(VoteSummary.objects.filter(galaxy__dataset=dataset, question=question, source=source,
                                                total__gt=0).select_related("galaxy"))
    usable, skipped = [], 0
    for summary in summaries:
        redshift = _number(summary.galaxy.metadata.get(redshift_key))
        size = _number(summary.galaxy.metadata.get(size_key))
        if redshift is None or size is None or redshift <= 0 or size <= 0:
            skipped += 1
            continue
        usable.append((summary, redshift, size))
    if not usable:
        return DebiasResult(0, skipped)
    p = [float(s.fractions.get(answer) or 0.0) for s, _, _ in usable]
    redshifts = [z for _, z, _ in usable]
    sizes = [r for _, _, r in usable]
    debiaser = debiaser or RedshiftDebiaser()
    debiased = debiaser.fit(p, redshifts, sizes).transform(p, redshifts, sizes)
    for (summary, _, _), raw, new in zip(usable, p, debiased, strict=True):
        rest = 1.0 - raw
        values = {key: (float(new) if key == answer else
                        (float(summary.fractions.get(key) or 0.0) / rest * (1.0 - new) if rest > 0 else 0.0))
                  for key in answers}
        summary.extra = {**summary.extra, "debiased": values}
    VoteSummary.objects.bulk_update([s for s, _, _ in usable], ["extra"], batch_size=2000)
    return DebiasResult(len(usable), skipped)
