"""A small classify world for screening volunteers: three honest sessions, a bot-like session that classifies a
galaxy a second, and a signed-in contrarian who calls every smooth galaxy a disk, each on every galaxy."""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from labeling.models import ClassifyPolicy, Dataset, DecisionTree, VolunteerClassification, VoteSummary
from labeling.services.votes.classify import classify_submit, subjects_ensure
from labeling.services.votes.schemas import schema_get_or_load_shipped
from labeling.services.votes.trees import tree_get_or_load_shipped
from tests.labeling.factories import make_galaxies

ROUND = {"smooth-or-featured": "smooth", "how-rounded": "round", "merging": "none"}
EDGE_ON = {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "yes", "edge-on-bulge": "none",
           "merging": "none"}
HONEST = ["session:honest0", "session:honest1", "session:honest2"]
BOT = "session:bot"
SECONDS_APART = {"session:honest0": 45, "session:honest1": 60, "session:honest2": 90, BOT: 1}


@dataclass
class Screening:
    dataset: Dataset
    tree: DecisionTree
    policy: ClassifyPolicy
    contrarian: str  # "user:<pk>"

    @property
    def galaxies(self):
        return list(self.dataset.galaxies.order_by("pk"))


def screening_world(contrarian_user, *, n_galaxies: int = 4, name: str = "screening") -> Screening:
    """Every volunteer classifies every galaxy: four smooth votes and one disk per galaxy, five in all, so each
    galaxy retires (after 5) and has a consensus (the rule wants 5 votes) only while the bot counts."""
    tree = tree_get_or_load_shipped(name="gz_decals")
    schema_get_or_load_shipped(name="galaxy10")
    galaxies = make_galaxies(n_galaxies, dataset_name=name, prefix=f"{name}-")
    dataset = galaxies[0].dataset
    policy = ClassifyPolicy.objects.create(dataset=dataset, tree=tree, retire_after=5)
    subjects_ensure(policy=policy)
    contrarian = f"user:{contrarian_user.pk}"
    for galaxy in galaxies:
        for volunteer in [*HONEST, BOT]:
            classify_submit(policy=policy, galaxy=galaxy, answers=ROUND, volunteer_id=volunteer)
        classify_submit(policy=policy, galaxy=galaxy, answers=EDGE_ON, volunteer_id=contrarian, user=contrarian_user)
    for volunteer, seconds in {**SECONDS_APART, contrarian: 30}.items():
        space_out(volunteer, seconds)
    return Screening(dataset, tree, policy, contrarian)


def space_out(volunteer: str, seconds: float) -> None:
    """Date the volunteer's classifications ``seconds`` apart, in the order they were made, starting a day ago."""
    start = timezone.now() - timedelta(days=1)
    rows = VolunteerClassification.objects.filter(volunteer_id=volunteer).order_by("pk")
    for position, pk in enumerate(rows.values_list("pk", flat=True)):
        VolunteerClassification.objects.filter(pk=pk).update(created_at=start + timedelta(seconds=position * seconds))


def figures(tree: DecisionTree) -> dict:
    """Every aggregated summary of the tree: (galaxy, question) -> (counts, total, fractions, reach)."""
    return {(s.galaxy_id, s.question.key): (s.counts, s.total, s.fractions, s.reach)
            for s in VoteSummary.objects.filter(question__tree=tree, source=VoteSummary.Source.AGGREGATED)
            .select_related("question")}
