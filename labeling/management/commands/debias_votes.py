"""Redshift-debias one answer's vote fraction of a dataset's own classifications: `python manage.py debias_votes
--dataset NAME --tree gz2 --question t01_smooth_or_features --answer a02_features_or_disk [--redshift-key redshift]
[--size-key petroR50_r] [--source aggregated]`. The debiased fractions go beside the raw ones (extra["debiased"])."""

from django.core.management.base import BaseCommand, CommandError

from labeling.management.jobs import dataset_named
from labeling.models import Question, VoteSummary
from labeling.services.votes.debias import votes_debias


class Command(BaseCommand):
    help = "Debias a vote fraction for redshift, from each galaxy's redshift and size in its catalogue metadata."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--tree", required=True, help="the decision tree's name")
        parser.add_argument("--question", required=True, help="the question's key, e.g. t01_smooth_or_features")
        parser.add_argument("--answer", required=True, help="the answer whose fraction drifts, e.g. "
                                                            "a02_features_or_disk")
        parser.add_argument("--redshift-key", default="redshift", help="metadata key of the redshift")
        parser.add_argument("--size-key", default="petroR50_r", help="metadata key of the angular size")
        parser.add_argument("--source", default=VoteSummary.Source.AGGREGATED, choices=VoteSummary.Source.values,
                            help="which vote summaries: our own classifications (default) or a catalogue's")

    def handle(self, *args, **options):
        dataset = dataset_named(options["dataset"])
        question = Question.objects.filter(tree__name=options["tree"], key=options["question"]).first()
        if question is None:
            raise CommandError(f"no question {options['question']!r} in a tree {options['tree']!r}")
        try:
            result = votes_debias(dataset=dataset, question=question, answer=options["answer"],
                                  redshift_key=options["redshift_key"], size_key=options["size_key"],
                                  source=options["source"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{question.key} on {dataset.name!r}: {result.summary()}")
