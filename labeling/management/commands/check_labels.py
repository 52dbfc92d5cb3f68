"""Compare the experts' labels with labels known from elsewhere: `python manage.py check_labels --dataset NAME
--schema NAME --known LABELS.csv`. Prints one line per expert: labels compared, share agreed, Cohen's kappa and the
most frequent confusions."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.management.jobs import dataset_named
from labeling.models import LabelSchema
from labeling.selectors.known_labels import labels_against_known
from labeling.services.learning.simulation import OracleError, oracle_read


class Command(BaseCommand):
    help = ("Check each expert's current labels against known labels (a published catalogue, or the demo's "
            "held-back oracle in var/demo/): agreement, Cohen's kappa and the commonest confusions.")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--schema", required=True, help="the label schema the known labels use")
        parser.add_argument("--known", required=True, type=Path,
                            help="CSV with a 'label' column (class keys) and an 'id' or 'file' column")

    def handle(self, *args, **options):
        dataset = dataset_named(options["dataset"])
        schema = LabelSchema.objects.filter(name=options["schema"]).prefetch_related("classes").first()
        if schema is None:
            raise CommandError(f"no label schema {options['schema']!r}")
        path = Path(options["known"])  # call_command passes the string through
        try:
            known = oracle_read(path=path, dataset=dataset)
        except OracleError as exc:
            raise CommandError(str(exc)) from None
        keys = {c.key for c in schema.classes.all()}
        foreign = sorted(set(known.values()) - keys)
        if foreign:
            raise CommandError(f"{path.name}: labels {', '.join(foreign[:5])} are not classes of schema "
                               f"{schema.name!r} (its classes: {', '.join(sorted(keys))})")
        checks = labels_against_known(schema=schema, dataset=dataset, known=known)
        self.stdout.write(f"{len(known)} galaxies of {dataset.name!r} with a known {schema.name} label")
        if not checks:
            self.stdout.write("no expert has labelled any of them yet")
        for check in checks:
            kappa = "n/a" if check.kappa is None else f"{check.kappa:.2f}"
            confused = ", ".join(f"{known_key}->{given} x{n}" for known_key, given, n in check.confusions[:3])
            self.stdout.write(f"{check.expert.get_username()}: {check.agreed} of {check.compared} agree "
                              f"({check.accuracy:.0%}), kappa {kappa}" + (f"; confused {confused}" if confused
                                                                          else ""))
