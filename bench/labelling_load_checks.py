"""The label checks of bench/labelling_load.py, apart from the load so that a test can feed them a doctored record.

What each expert sent and was answered is replayed with the rules of labeling.services.labelling.labels and .actions
(a new class supersedes the label in force and keeps it as history; the same class again stores nothing; an undo deletes
the expert's latest label and makes the one it replaced current again), giving, per (expert, galaxy), the labels
the database must hold, oldest first. The rows it does hold are then compared with that, id by id.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass


@dataclass
class Sent:
    """One request of an expert that writes labels, as sent and as answered."""

    expert: str
    action: str  # "label" (POST /api/labels/), "undo" (POST /api/labels/undo/) or "skip"
    kind: str  # why it was sent: "label", "retry", "change", "double", "relabel" (after an undo), "undo", "skip"
    galaxy: int  # the galaxy labelled, skipped, or expected to be undone
    label_class: str = ""
    status: int = 0
    answer: int | None = None  # the label's id (label), the galaxy undone (undo)
    entry: int | None = None  # the queue entry


@dataclass
class Row:
    """One ExpertLabel row of the run's experts, as stored."""

    id: int
    expert: str
    galaxy: int
    label_class: str
    current: bool


def replay(sent: list[Sent]) -> tuple[dict, Counter]:
    """(expected, problems): per (expert, galaxy) the [(id, class)] the database must hold, oldest first, the last
    in force; problems counts answers that break the rules (a label sent again given a new id, an undo that took
    back another galaxy's label). ``sent`` is in each expert's own order; requests answered outside 2xx are left
    out (they are the errors)."""
    expected, problems = defaultdict(list), Counter()
    for one in sent:
        if not 200 <= one.status < 300 or one.action == "skip":
            continue
        if one.action == "undo":
            if one.answer != one.galaxy:
                problems["an undo took back another galaxy's label"] += 1
            labels = expected[(one.expert, one.answer)]
            if labels:
                labels.pop()
            else:
                problems["an undo took back a label never given"] += 1
            continue
        labels = expected[(one.expert, one.galaxy)]
        if labels and labels[-1][1] == one.label_class:
            if one.answer != labels[-1][0]:
                problems[f"a label sent again ({one.kind}) was stored anew"] += 1
            continue
        labels.append((one.answer, one.label_class))
    return expected, problems


def compare(sent: list[Sent], rows: list[Row]) -> tuple[dict, list[tuple[str, bool, str]]]:
    """(numbers, [(check, passed, detail)]) for the labels the experts were answered 2xx for against ``rows``
    (every ExpertLabel row of these experts, ordered by creation)."""
    expected, problems = replay(sent)
    stored = defaultdict(list)
    for row in rows:
        stored[(row.expert, row.galaxy)].append(row)
    expected_ids = {pk for labels in expected.values() for pk, _ in labels}
    stored_ids = Counter(row.id for row in rows)
    lost = expected_ids - set(stored_ids)
    # A row no answer accounts for (or an undone label still there), a row twice, a second label in force.
    extra = set(stored_ids) - expected_ids
    in_force = Counter((row.expert, row.galaxy) for row in rows if row.current)
    duplicates = len(extra) + sum(n - 1 for n in stored_ids.values()) + sum(n - 1 for n in in_force.values())
    wrong = []
    for pair in set(expected) | set(stored):
        held = stored.get(pair, [])
        last_only = [n == len(held) - 1 for n in range(len(held))]  # only the newest row in force
        if [(row.id, row.label_class) for row in held] != expected.get(pair, []) or [
                row.current for row in held] != last_only:
            wrong.append(pair)
    labels_sent = sum(1 for one in sent if one.action == "label" and 200 <= one.status < 300)
    numbers = {"sent": labels_sent, "stored": sum(in_force.values()), "history": len(rows) - sum(in_force.values()),
               "expected": sum(bool(labels) for labels in expected.values()), "duplicates": duplicates,
               "lost": len(lost)}
    checks = [
        ("every label answered 2xx stored exactly once", not lost and not duplicates,
         f"{labels_sent} labels answered 2xx, {numbers['stored']} in force + {numbers['history']} history rows, "
         f"{len(lost)} lost, {duplicates} duplicates"),
        ("each label in force is the last class sent, its history the changes", not wrong,
         f"{len(expected)} (expert, galaxy) pairs, {len(wrong)} differ"),
        ("a label sent again stores nothing; an undo takes back the label just given", not problems,
         ", ".join(f"{what}: {n}" for what, n in problems.items()) or "none"),
    ]
    return numbers, checks


def database_checks(*, sent: list[Sent], offered: dict, errors: dict, experts: list[str], dataset, schema,
                    counter_before: int) -> tuple[dict, list[tuple[str, bool, str]]]:
    """compare() on the experts' rows in the database, and the checks on queue entries, the refit counter and the
    answers: (numbers, [(check, passed, detail)])."""
    from labeling.models import ExpertLabel, Job, QueueEntry, QueuePolicy

    rows = [Row(pk, expert, galaxy, key, superseded is None) for pk, expert, galaxy, key, superseded in
            ExpertLabel.objects.filter(expert__username__in=experts, schema=schema).order_by("created_at", "pk")
            .values_list("pk", "expert__username", "galaxy_id", "label_class__key", "superseded_at")]
    numbers, checks = compare(sent, rows)
    checks.insert(0, ("no answer outside 2xx, no timeout, no failed connection", not errors,
                      ", ".join(f"{kind}: {n}" for kind, n in errors.items()) or "none"))

    statuses = {}
    for expert, galaxy, status in QueueEntry.objects.filter(
            expert__username__in=experts, dataset=dataset, schema=schema).values_list(
            "expert__username", "galaxy_id", "status"):
        statuses.setdefault((expert, galaxy), set()).add(status)
    labelled = {(row.expert, row.galaxy) for row in rows if row.current}
    skipped = {(one.expert, one.galaxy) for one in sent if one.action == "skip" and 200 <= one.status < 300}
    open_entries = [pair for pair in labelled if statuses.get(pair) != {QueueEntry.Status.DONE}]
    open_entries += [pair for pair in skipped - labelled if statuses.get(pair) != {QueueEntry.Status.SKIPPED}]
    checks.append(("queue entries closed: done when labelled, skipped when skipped", not open_entries,
                   f"{len(labelled)} labelled, {len(skipped)} skipped, {len(open_entries)} still open or wrong"))

    label_posts = sum(1 for one in sent if one.action == "label" and 200 <= one.status < 300)
    counted = QueuePolicy.objects.get(dataset=dataset).labels_since_refit - counter_before
    checks.append(("the refit counter grew by one per label POST (no lost update)", counted == label_posts,
                   f"{label_posts} label POSTs answered 2xx, counter +{counted}"))
    refits = Job.objects.filter(kind=Job.Kind.FIT_CLASSIFIER).count() - 1  # less the fill's own
    checks.append(("no refit started (none was due: no worker runs)", refits == 0, f"{refits} started"))
    repeats = sum(n - 1 for ids in offered.values() for n in Counter(ids).values())
    checks.append(("no expert offered a queue entry twice", repeats == 0, f"{repeats} repeat offers"))

    idle = sorted(set(experts) - {one.expert for one in sent if one.action == "label" and 200 <= one.status < 300})
    checks.append(("every expert labelled", not idle, f"{len(experts) - len(idle)} of {len(experts)}"
                   + (f"; none from {', '.join(idle)}" if idle else "")))
    per_galaxy = Counter(galaxy for _, galaxy in labelled)
    kinds = Counter(one.kind for one in sent if 200 <= one.status < 300)
    numbers.update(errors=sum(errors.values()), skips=len(skipped), shared_galaxies=sum(n > 1 for n in
                   per_galaxy.values()), most_experts_per_galaxy=max(per_galaxy.values(), default=0),
                   kinds=dict(kinds), refits=refits)
    return numbers, checks
