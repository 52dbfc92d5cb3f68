"""Weight a dataset's volunteers by their consistency (Galaxy Zoo 2's scheme): `python manage.py weight_volunteers
--dataset NAME [--tree NAME]`; the tree defaults to the dataset's classify policy's."""

from django.core.management.base import BaseCommand, CommandError

from labeling.management.jobs import dataset_named
from labeling.models import ClassifyPolicy, DecisionTree
from labeling.services.votes.weighting import volunteers_weight


class Command(BaseCommand):
    help = "Weight volunteers by their consistency and add weighted fractions to the aggregated vote summaries."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--tree", help="the decision tree's name (default: the dataset's classify policy's)")

    def handle(self, *args, **options):
        dataset = dataset_named(options["dataset"])
        if options["tree"]:
            tree = DecisionTree.objects.filter(name=options["tree"]).first()
            if tree is None:
                raise CommandError(f"no decision tree {options['tree']!r}")
        else:
            policy = ClassifyPolicy.objects.select_related("tree").filter(dataset=dataset).first()
            if policy is None:
                raise CommandError(f"dataset {dataset.name!r} has no classify policy: name the tree with --tree")
            tree = policy.tree
        try:
            result = volunteers_weight(dataset=dataset, tree=tree)
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{result['volunteers']} volunteers of {tree.name!r} on {dataset.name!r} weighted in "
                          f"{result['iterations']} iterations ({result['down_weighted']} below weight 1); "
                          f"{result['summaries']} vote summaries updated")
