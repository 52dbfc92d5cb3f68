"""The label of each galaxy under a schema, from experts or from the volunteers' consensus: what clusterings are
compared with and what LDA maps separate."""

from dataclasses import dataclass

from django.db.models import Count

from labeling.models import ConsensusLabel, ConsensusRule, Dataset, ExpertLabel, LabelResolution, LabelSchema
from labeling.selectors.expert_majority import majority_class

EXPERT, CONSENSUS = "expert", "consensus"


@dataclass(frozen=True)
class LabelSet:
    schema: LabelSchema
    source: str  # EXPERT or CONSENSUS
    count: int  # galaxies of the dataset it labels

    @property
    def name(self) -> str:
        return f"{self.source}: {self.schema.title or self.schema.name}"

    @property
    def key(self) -> str:
        return f"{self.source}:{self.schema.name}"


def label_sets(*, dataset: Dataset) -> list[LabelSet]:
    """Every (schema, source) that labels at least one galaxy of the dataset, most galaxies first."""
    expert = (ExpertLabel.objects.filter(galaxy__dataset=dataset, superseded_at__isnull=True)
              .values("schema").annotate(n=Count("galaxy", distinct=True)))
    consensus = (ConsensusLabel.objects.filter(galaxy__dataset=dataset).exclude(
        label_class__key__in=ConsensusRule.objects.values("uncertain_class_key")).values("schema")
        .annotate(n=Count("galaxy")))
    schemas = LabelSchema.objects.in_bulk([row["schema"] for row in [*expert, *consensus]])
    found = [LabelSet(schemas[row["schema"]], EXPERT, row["n"]) for row in expert]
    found += [LabelSet(schemas[row["schema"]], CONSENSUS, row["n"]) for row in consensus]
    return sorted(found, key=lambda s: (-s.count, s.key))


def galaxy_labels(*, dataset: Dataset, schema: LabelSchema, source: str) -> dict[int, str]:
    """Class key per labelled galaxy of the dataset. Experts who disagree: an admin's resolution, else the class
    most of them gave, the latest label breaking ties. Consensus: the consensus class, leaving out 'uncertain'
    (no class is no label)."""
    if source == CONSENSUS:
        uncertain = set(ConsensusRule.objects.filter(schema=schema).values_list("uncertain_class_key", flat=True))
        rows = ConsensusLabel.objects.filter(schema=schema, galaxy__dataset=dataset).exclude(
            label_class__key__in=uncertain).values_list("galaxy_id", "label_class__key")
        return dict(rows)
    if source != EXPERT:
        raise ValueError(f"unknown label source {source!r}; use {EXPERT!r} or {CONSENSUS!r}")
    given: dict[int, list[str]] = {}  # galaxy id -> class keys of its current labels, oldest first
    rows = (ExpertLabel.objects.filter(schema=schema, galaxy__dataset=dataset, superseded_at__isnull=True)
            .order_by("created_at", "pk").values_list("galaxy_id", "label_class__key"))
    for galaxy_id, key in rows:
        given.setdefault(galaxy_id, []).append(key)
    labels = {galaxy_id: majority_class(keys) for galaxy_id, keys in given.items()}
    labels.update(LabelResolution.objects.filter(schema=schema, galaxy__dataset=dataset)
                  .values_list("galaxy_id", "label_class__key"))
    return labels


def label_history(*, label: ExpertLabel):
    """Every label the same expert (or the same import) gave the galaxy under the schema, newest first: the label
    in force, those it replaced, and withdrawn ones."""
    rows = ExpertLabel.objects.filter(galaxy_id=label.galaxy_id, schema_id=label.schema_id)
    rows = rows.filter(expert_id=label.expert_id) if label.expert_id else rows.filter(
        expert__isnull=True, provenance=label.provenance)
    return rows.order_by("-created_at", "-pk")
