"""Reads of the catalogue, votes and labels that span relations, shaped for the browser pages. Each costs a fixed
number of queries, whatever the
number of galaxies, so a page of 60 thumbnails is as cheap as a page of 6."""

import json
from dataclasses import dataclass, field

from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from labeling.models import (
    Clustering,
    ConsensusLabel,
    Dataset,
    ExpertLabel,
    Galaxy,
    LabelSchema,
    Question,
    VoteSummary,
)

LABELLED_EXPERT = "expert"
LABELLED_CONSENSUS = "consensus"
LABELLED_NONE = "none"
IMAGES_WITH = "with"
IMAGES_WITHOUT = "without"

# A galaxy "has an image" as the dataset list counts it: a stored file name, not an empty one.
_NO_IMAGE = Q(image="") | Q(image__isnull=True)


def _count_galaxies(condition: Q | Exists | None = None) -> Coalesce:
    """A per-dataset count of its galaxies (optionally only those matching ``condition``), as a subquery.

    Subqueries rather than Count() over joins: joining galaxies to votes and labels at once would multiply rows.
    """
    galaxies = Galaxy.objects.filter(dataset=OuterRef("pk"))
    if condition is not None:
        galaxies = galaxies.filter(condition)
    counted = galaxies.order_by().values("dataset").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _has_votes() -> Exists:
    return Exists(VoteSummary.objects.filter(galaxy=OuterRef("pk")))


def _has_expert_label(schema: LabelSchema | None = None, class_key: str | None = None) -> Exists:
    labels = ExpertLabel.objects.filter(galaxy=OuterRef("pk"), superseded_at__isnull=True)
    if schema is not None:
        labels = labels.filter(schema=schema)
    if class_key is not None:
        labels = labels.filter(label_class__key=class_key)
    return Exists(labels)


def _has_consensus_label(schema: LabelSchema | None = None, class_key: str | None = None) -> Exists:
    labels = ConsensusLabel.objects.filter(galaxy=OuterRef("pk"))
    if schema is not None:
        labels = labels.filter(schema=schema)
    if class_key is not None:
        labels = labels.filter(label_class__key=class_key)
    return Exists(labels)


def dataset_list() -> QuerySet[Dataset]:
    """Every dataset with how many of its galaxies have an image, votes, a current expert label, a consensus label.

    Returns:
        Datasets annotated with n_galaxies, n_images, n_voted, n_expert and n_consensus.
    """
    return Dataset.objects.annotate(
        n_galaxies=_count_galaxies(),
        n_images=_count_galaxies(~_NO_IMAGE),
        n_voted=_count_galaxies(_has_votes()),
        n_expert=_count_galaxies(_has_expert_label()),
        n_consensus=_count_galaxies(_has_consensus_label()),
    ).order_by("name")


def galaxy_list(
    *,
    dataset: Dataset | None = None,
    schema: LabelSchema | None = None,
    expert_class: str | None = None,
    consensus_class: str | None = None,
    labelled: str | None = None,
    search: str = "",
    clustering: Clustering | None = None,
    cluster: int | None = None,
    images: str | None = None,
) -> QuerySet[Galaxy]:
    """Galaxies matching the grid's filters, each with its current expert labels and consensus labels prefetched.

    Args:
        dataset: only this dataset's galaxies.
        schema: the schema the class filters and the prefetched labels belong to; all schemas when None.
        expert_class: key of a class of ``schema`` that a current expert label must give.
        consensus_class: key of a class of ``schema`` that the consensus label must give.
        labelled: "expert", "consensus" (has such a label) or "none" (has neither), within ``schema``.
        search: part of the external id, case-insensitive.
        clustering, cluster: only the galaxies that ``clustering`` put in cluster number ``cluster``.
        images: "with" (only galaxies with an image), "without" (only catalogue-only ones), or None for both.

    Returns:
        A queryset of galaxies with an image first, then by dataset and id; its galaxies carry
        ``current_expert_labels`` and ``consensus_labels_shown`` lists.

    Raises:
        ValueError: for a class filter without a schema (class keys are only unique within a schema), or an unknown
            ``labelled`` or ``images`` value.
    """
    if (expert_class or consensus_class) and schema is None:
        raise ValueError("a class filter needs a schema: class keys are only unique within one")
    galaxies = Galaxy.objects.select_related("dataset")
    if dataset is not None:
        galaxies = galaxies.filter(dataset=dataset)
    if search:
        galaxies = galaxies.filter(external_id__icontains=search)
    if clustering is not None:
        galaxies = galaxies.filter(cluster_assignments__clustering=clustering, cluster_assignments__cluster=cluster)
    if expert_class:
        galaxies = galaxies.filter(_has_expert_label(schema, expert_class))
    if consensus_class:
        galaxies = galaxies.filter(_has_consensus_label(schema, consensus_class))
    if labelled == LABELLED_EXPERT:
        galaxies = galaxies.filter(_has_expert_label(schema))
    elif labelled == LABELLED_CONSENSUS:
        galaxies = galaxies.filter(_has_consensus_label(schema))
    elif labelled == LABELLED_NONE:
        galaxies = galaxies.exclude(_has_expert_label(schema)).exclude(_has_consensus_label(schema))
    elif labelled:
        raise ValueError(f"unknown 'labelled' filter {labelled!r}")
    if images == IMAGES_WITH:
        galaxies = galaxies.exclude(_NO_IMAGE)
    elif images == IMAGES_WITHOUT:
        galaxies = galaxies.filter(_NO_IMAGE)
    elif images:
        raise ValueError(f"unknown 'images' filter {images!r}")

    # Pictures first: a catalogue of votes without pixels (the demo's 19,761 Stripe 82 galaxies) would otherwise
    # fill the first pages with placeholders. They still follow, and the "images" filter shows them alone.
    without_image_last = Case(When(_NO_IMAGE, then=Value(1)), default=Value(0), output_field=IntegerField())
    return with_current_labels(galaxies, schema=schema).order_by(without_image_last, "dataset__name", "id")


def with_current_labels(galaxies: QuerySet[Galaxy], *, schema: LabelSchema | None = None) -> QuerySet[Galaxy]:
    """``galaxies`` with their current expert labels and consensus labels (of ``schema``, or all) prefetched as
    ``current_expert_labels`` and ``consensus_labels_shown``: two queries, however many galaxies."""
    expert_labels = ExpertLabel.objects.filter(superseded_at__isnull=True).select_related("schema", "label_class",
                                                                                          "expert")
    consensus_labels = ConsensusLabel.objects.select_related("schema", "label_class")
    if schema is not None:
        expert_labels = expert_labels.filter(schema=schema)
        consensus_labels = consensus_labels.filter(schema=schema)
    return galaxies.prefetch_related(
        Prefetch("expert_labels", queryset=expert_labels.order_by("schema__name", "label_class__order"),
                 to_attr="current_expert_labels"),
        Prefetch("consensus_labels", queryset=consensus_labels.order_by("schema__name"),
                 to_attr="consensus_labels_shown"),
    )


def distinct_badges(labels) -> list:
    """The labels with one entry per (schema, class): three experts agreeing make one badge, not three."""
    seen, kept = set(), []
    for label in labels:
        key = (label.schema_id, label.label_class_id)
        if key not in seen:
            seen.add(key)
            kept.append(label)
    return kept


@dataclass
class AnswerBar:
    key: str
    text: str
    fraction: float
    count: int | None
    leading: bool = False
    help: str = ""
    debiased: float | None = None  # published, or from debias_votes; shown beside the raw fraction

    @property
    def percent(self) -> float:
        return 100.0 * self.fraction

    @property
    def debiased_percent(self) -> float | None:
        return None if self.debiased is None else 100.0 * self.debiased


@dataclass
class QuestionVotes:
    question: Question
    total: int | None
    reach: float | None
    answers: list[AnswerBar]

    @property
    def has_votes(self) -> bool:
        """False when nobody answered; the page greys such a question out."""
        if self.total is not None:
            return self.total > 0
        return any(bar.fraction > 0 for bar in self.answers)


@dataclass
class TreeVotes:
    """The vote breakdown of one decision tree from one source (a catalogue or our own classifications)."""

    tree_title: str
    tree_name: str
    source: str
    source_label: str
    imported_from: str
    questions: list[QuestionVotes]


@dataclass
class GalaxyDetail:
    galaxy: Galaxy
    votes: list[TreeVotes]
    consensus_labels: list[ConsensusLabel]
    current_expert_labels: list[ExpertLabel]
    past_expert_labels: list[ExpertLabel]
    previous_id: int | None = None
    next_id: int | None = None
    metadata: list[tuple[str, object]] = field(default_factory=list)


def _number_or_none(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def votes_by_tree(galaxy: Galaxy) -> list[TreeVotes]:
    """The galaxy's vote breakdown per decision tree and source, questions in tree order: two queries."""
    return votes_by_tree_of([galaxy.pk]).get(galaxy.pk, [])


def votes_by_tree_of(galaxy_ids: list[int]) -> dict[int, list[TreeVotes]]:
    """:func:`votes_by_tree` for several galaxies at once, still two queries."""
    summaries = (
        VoteSummary.objects.filter(galaxy_id__in=galaxy_ids)
        .select_related("question__tree")
        .prefetch_related("question__answers")
        .order_by("question__tree__name", "source", "question__order")
    )
    blocks: dict[tuple[int, int, str], TreeVotes] = {}
    for summary in summaries:
        question = summary.question
        key = (summary.galaxy_id, question.tree_id, summary.source)
        block = blocks.get(key)
        if block is None:
            block = blocks[key] = TreeVotes(
                tree_title=str(question.tree), tree_name=question.tree.name, source=summary.source,
                source_label=summary.get_source_display(), imported_from=summary.imported_from, questions=[],
            )
        fractions = summary.fractions or {}
        counts = summary.counts or {}
        debiased = (summary.extra or {}).get("debiased")
        debiased = debiased if isinstance(debiased, dict) and summary.total else {}
        bars = [
            AnswerBar(key=answer.key, text=answer.text, fraction=float(fractions.get(answer.key) or 0.0),
                      count=counts.get(answer.key) if summary.counts is not None else None, help=answer.help_text,
                      debiased=_number_or_none(debiased.get(answer.key)))
            for answer in question.answers.all()
        ]
        if bars:
            top = max(bars, key=lambda bar: bar.fraction)
            top.leading = top.fraction > 0
        block.questions.append(QuestionVotes(question=question, total=summary.total, reach=summary.reach,
                                             answers=bars))
    found: dict[int, list[TreeVotes]] = {}
    for (galaxy_id, _, _), block in blocks.items():
        found.setdefault(galaxy_id, []).append(block)
    return found


def galaxy_detail(*, galaxy_id: int) -> GalaxyDetail:
    """Everything the galaxy page shows: votes per tree and source in tree order, consensus and expert labels
    (current and superseded), and the neighbouring galaxies of its dataset.

    Raises:
        Galaxy.DoesNotExist: for an unknown id.
    """
    galaxy = Galaxy.objects.select_related("dataset").get(pk=galaxy_id)
    consensus_labels = list(
        ConsensusLabel.objects.filter(galaxy=galaxy)
        .select_related("schema", "label_class", "rule__tree")
        .order_by("schema__name")
    )
    expert_labels = list(
        ExpertLabel.objects.filter(galaxy=galaxy)
        .select_related("schema", "label_class", "expert")
        .order_by("schema__name", "-created_at", "-id")
    )
    siblings = Galaxy.objects.filter(dataset_id=galaxy.dataset_id)
    previous = siblings.filter(id__lt=galaxy.id).order_by("-id").values_list("id", flat=True).first()
    following = siblings.filter(id__gt=galaxy.id).order_by("id").values_list("id", flat=True).first()
    metadata = galaxy.metadata if isinstance(galaxy.metadata, dict) else {"value": galaxy.metadata}
    # Nested values are shown as JSON, as they came, rather than as Python's repr of them.
    shown = {key: json.dumps(value) if isinstance(value, list | dict) else value for key, value in metadata.items()}
    return GalaxyDetail(
        galaxy=galaxy,
        votes=votes_by_tree(galaxy),
        consensus_labels=consensus_labels,
        current_expert_labels=[label for label in expert_labels if label.is_current],
        past_expert_labels=[label for label in expert_labels if not label.is_current],
        previous_id=previous,
        next_id=following,
        metadata=sorted(shown.items()),
    )

