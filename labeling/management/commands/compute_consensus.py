"""Recompute consensus labels: `python manage.py compute_consensus --schema NAME [--rule NAME] [--dataset NAME]`."""

from django.core.management.base import BaseCommand, CommandError

from labeling.models import ConsensusRule, Dataset
from labeling.services.votes.consensus import consensus_compute


class Command(BaseCommand):
    help = "Map vote fractions to schema classes with a consensus rule; expert labels are never touched."

    def add_arguments(self, parser):
        parser.add_argument("--schema", required=True)
        parser.add_argument("--rule", help="Rule name; every rule of the schema when omitted.")
        parser.add_argument("--dataset", help="Limit to one dataset.")

    def handle(self, *args, **options):
        rules = ConsensusRule.objects.filter(schema__name=options["schema"]).select_related("schema", "tree")
        if options["rule"]:
            rules = rules.filter(name=options["rule"])
        if not rules:
            raise CommandError(f"no consensus rule for schema {options['schema']!r}"
                               + (f" named {options['rule']!r}" if options["rule"] else ""))
        dataset = None
        if options["dataset"]:
            dataset = Dataset.objects.filter(name=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"no dataset named {options['dataset']!r}")
        for rule in rules:
            tally = consensus_compute(rule=rule, dataset=dataset)
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(tally.items())) or "no galaxies with votes"
            self.stdout.write(f"{rule}: {shown}")
