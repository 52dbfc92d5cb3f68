"""Recount volunteer classifications into vote summaries: `python manage.py aggregate_votes --tree NAME`."""

from django.core.management.base import BaseCommand, CommandError

from labeling.models import DecisionTree
from labeling.services.votes.aggregation import votes_aggregate


class Command(BaseCommand):
    help = "Aggregate the stored volunteer classifications of a decision tree into per-question vote summaries."

    def add_arguments(self, parser):
        parser.add_argument("--tree", required=True)

    def handle(self, *args, **options):
        tree = DecisionTree.objects.filter(name=options["tree"]).first()
        if tree is None:
            raise CommandError(f"no decision tree named {options['tree']!r}; load one with load_tree")
        count = votes_aggregate(tree=tree)
        self.stdout.write(f"tree {tree.name!r}: vote summaries written for {count} galaxies")
