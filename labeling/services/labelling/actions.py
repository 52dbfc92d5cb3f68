"""What an expert does on the labelling page: label the galaxy in front of them, skip it, undo the last label,
label many at once, and what an admin does with a disagreement: resolve it."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import (
    Dataset,
    ExpertLabel,
    Galaxy,
    LabelClass,
    LabelResolution,
    LabelSchema,
    QueueEntry,
)
from labeling.selectors import queue as reads
from labeling.services.jobs.lifecycle import JobConflict
from labeling.services.labelling.labels import expert_label_set, galaxy_lock, user_is_expert
from labeling.services.labelling.queue import entry_finish, queue_build_start
from labeling.services.learning.classifier import labels_arrived


def label_give(*, expert, galaxy: Galaxy, schema: LabelSchema, label_class: LabelClass, note: str = "",
               replaces: ExpertLabel | None = None) -> ExpertLabel:
    """The expert's label for a galaxy from their queue (or anywhere): saved, the queue entry closed, and a refit
    of the probability model started when enough new labels have arrived. ``replaces``: the label being changed.

    Raises:
        PermissionDenied: for a user who is not an expert.
        ValidationError: for a class of another schema.
        LabelNotCurrent: when ``replaces`` was replaced or withdrawn in the meantime.
    """
    with transaction.atomic():
        label = expert_label_set(galaxy=galaxy, schema=schema, label_class=label_class, expert=expert, note=note,
                                 replaces=replaces)
        entry_finish(expert=expert, dataset=galaxy.dataset, schema=schema, galaxy_id=galaxy.pk,
                     status=QueueEntry.Status.DONE)
    labels_arrived(dataset=galaxy.dataset, schema=schema)
    return label


def entry_skip(*, expert, entry: QueueEntry) -> QueueEntry:
    """Skip a galaxy of one's own queue; it is not offered to this expert again.

    Raises:
        PermissionDenied: when the entry is another expert's.
    """
    if entry.expert_id != expert.pk:
        raise PermissionDenied("this queue entry belongs to another expert")
    if entry.status == QueueEntry.Status.PENDING:
        entry.status = QueueEntry.Status.SKIPPED
        entry.finished_at = timezone.now()
        entry.save(update_fields=["status", "finished_at"])
    return entry


@transaction.atomic
def label_undo(*, expert, dataset: Dataset, schema: LabelSchema) -> tuple[ExpertLabel, QueueEntry] | None:
    """Take back the expert's latest label in this dataset and schema: the label it replaced (if any) is current
    again, and the galaxy goes back to the head of the expert's queue. None when there is nothing to undo.

    An undone label is removed rather than kept as history: it was a slip of the key, not an opinion.
    """
    latest = (ExpertLabel.objects.filter(expert=expert, schema=schema, galaxy__dataset=dataset,
                                         superseded_at__isnull=True).order_by("-created_at", "-pk"))
    galaxy_id = latest.values_list("galaxy_id", flat=True).first()
    if galaxy_id is None:
        return None
    # The galaxy's lock first, as every label write takes it (expert_label_set): a label given to the galaxy at
    # the same instant then waits, and sees the label this brings back, instead of inserting a second current one.
    galaxy_lock(galaxy_id)
    last = latest.select_for_update(of=("self",)).select_related("galaxy", "label_class").first()
    if last is None or last.galaxy_id != galaxy_id:
        return None  # undone, or overtaken by a newer label, at the same instant: nothing left to undo here
    replaced = (ExpertLabel.objects.filter(expert=expert, schema=schema, galaxy=last.galaxy,
                                           superseded_at=last.created_at).order_by("-created_at").first())
    last.delete()
    if replaced is not None:
        replaced.superseded_at = None
        replaced.save(update_fields=["superseded_at"])
    QueueEntry.objects.filter(expert=expert, schema=schema, galaxy=last.galaxy,
                              status=QueueEntry.Status.PENDING).delete()
    entry = (QueueEntry.objects.filter(expert=expert, schema=schema, galaxy=last.galaxy,
                                       status=QueueEntry.Status.DONE).order_by("-finished_at", "-pk").first())
    if entry is None:
        entry = QueueEntry(expert=expert, dataset=dataset, schema=schema, galaxy=last.galaxy, strategy="returned",
                           requested_strategy="returned", score=0.0)
    entry.status, entry.finished_at, entry.rank = QueueEntry.Status.PENDING, None, 0
    entry.save()
    return last, entry


def labels_bulk(*, expert, schema: LabelSchema, label_class: LabelClass, galaxy_ids: list[int],
                note: str = "") -> dict:
    """One class for many galaxies (selected in a cluster gallery or a neighbour grid), all or none.

    Raises:
        PermissionDenied: for a user who is not an expert.
        ValidationError: naming unknown galaxy ids, or a class of another schema.
    """
    if not user_is_expert(expert):
        raise PermissionDenied(f"{expert} is not an expert")
    galaxies = Galaxy.objects.select_related("dataset").in_bulk(set(galaxy_ids))
    missing = sorted(set(galaxy_ids) - set(galaxies))
    if missing:
        raise ValidationError({"galaxies": f"no galaxy with id {', '.join(map(str, missing[:10]))}"})
    labelled = unchanged = 0
    with transaction.atomic():
        # In id order: each label locks its galaxy until the end, and two bulk requests sharing galaxies must take
        # the locks in the same order, or each could hold one the other waits for (a deadlock).
        for _, galaxy in sorted(galaxies.items()):
            before = ExpertLabel.objects.filter(galaxy=galaxy, schema=schema, expert=expert,
                                                superseded_at__isnull=True).values_list("pk", flat=True).first()
            label = expert_label_set(galaxy=galaxy, schema=schema, label_class=label_class, expert=expert,
                                     note=note, provenance="bulk")
            entry_finish(expert=expert, dataset=galaxy.dataset, schema=schema, galaxy_id=galaxy.pk,
                         status=QueueEntry.Status.DONE)
            labelled += label.pk != before
            unchanged += label.pk == before
    per_dataset: dict = {}
    for galaxy in galaxies.values():
        per_dataset[galaxy.dataset] = per_dataset.get(galaxy.dataset, 0) + 1
    if labelled:
        for dataset, count in per_dataset.items():
            labels_arrived(dataset=dataset, schema=schema, count=count)
    return {"labelled": labelled, "unchanged": unchanged}


def label_resolve(*, admin, galaxy: Galaxy, schema: LabelSchema, label_class: LabelClass,
                  note: str = "") -> LabelResolution:
    """An admin's final class for a galaxy the experts disagree on, kept with who decided and when.

    Raises:
        PermissionDenied: for a user who is not an admin.
        ValidationError: for a class of another schema.
    """
    if not (admin.is_staff or admin.is_superuser):
        raise PermissionDenied("only admins resolve disagreements")
    if label_class.schema_id != schema.pk:
        raise ValidationError(f"class {label_class.key!r} is not part of schema {schema.name!r}")
    resolution, _ = LabelResolution.objects.update_or_create(
        galaxy=galaxy, schema=schema,
        defaults={"label_class": label_class, "resolved_by": admin, "resolved_at": timezone.now(), "note": note},
    )
    return resolution


def queue_next(*, expert, dataset: Dataset, schema: LabelSchema, count: int = 2, exclude: list[int] = ()) -> dict:
    """The head of the expert's queue as the labelling page shows it. An empty queue starts a build for this
    expert (once: not again until they label something new), and says so."""
    entries = reads.pending_entries(expert=expert, dataset=dataset, schema=schema, count=count, exclude=exclude)
    building, message = False, ""
    if not entries and not reads.queue_remaining(expert=expert, dataset=dataset, schema=schema):
        latest = reads.queue_build_state(dataset=dataset, schema=schema)
        last_label = (ExpertLabel.objects.filter(expert=expert, schema=schema, galaxy__dataset=dataset)
                      .order_by("-created_at").values_list("created_at", flat=True).first())
        if latest is not None and not latest.is_finished:
            building = True
        elif latest is None or latest.status != latest.Status.SUCCEEDED or (
                last_label is not None and last_label > latest.created_at) or expert.pk not in (
                latest.arguments.get("experts") or [expert.pk]):
            building = _start_build(dataset, schema, expert)
            entries = reads.pending_entries(expert=expert, dataset=dataset, schema=schema, count=count,
                                            exclude=exclude)
            building = building and not entries
        if not entries and not building:
            message = ("Your queue is empty: every galaxy of this dataset that can be chosen has a label or waits "
                       "in another expert's queue.")
    return {"entries": reads.entries_json(entries=entries, expert=expert, dataset=dataset, schema=schema),
            "labelled_today": reads.labelled_today(expert=expert),
            "remaining": reads.queue_remaining(expert=expert, dataset=dataset, schema=schema),
            "building": building, "message": message}


def _start_build(dataset, schema, expert) -> bool:
    """True when a build for the expert is now queued, running or (with inline tasks) already done."""
    try:
        job = queue_build_start(dataset=dataset, schema=schema, experts=[expert], user=expert)
    except JobConflict:
        return True
    job.refresh_from_db()
    return not job.is_finished or job.status == job.Status.SUCCEEDED
