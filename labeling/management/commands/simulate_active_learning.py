"""Measure what active learning saves: `python manage.py simulate_active_learning --dataset NAME --oracle LABELS.csv
--strategy S [--strategy S2 ...] [--initial 20] [--step 20] [--rounds 19] [--seeds 5] [--seed 0] [--start shared|own]
[--out DIR]`. Prints the verdict table of mlcore.active.curves (mean balanced accuracy over the seeds)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.management.jobs import dataset_named, feature_set_of
from labeling.management.progress import PhaseBars
from labeling.services.learning.simulation import OracleError, simulation_run


class Command(BaseCommand):
    help = ("Hide a dataset's labels behind an oracle CSV, let each query strategy ask for labels round by round, "
            "and write learning curves (JSON and PNG) with the labels each strategy saves against random.")

    def add_arguments(self, parser):
        from mlcore.active.query import STRATEGIES

        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--oracle", required=True, type=Path,
                            help="CSV with a 'label' column and an 'id' or 'file' column matching the galaxies")
        parser.add_argument("--strategy", action="append", choices=STRATEGIES, required=True,
                            help="a query strategy; repeat for several (random is always added as the baseline)")
        parser.add_argument("--initial", type=int, default=20, help="labels of the first round")
        parser.add_argument("--step", type=int, default=20, help="labels added per round")
        parser.add_argument("--rounds", type=int, default=19, help="rounds after the first (19: up to 400 labels)")
        parser.add_argument("--seeds", type=int, default=5,
                            help="runs, each with its own split, initial labels and random choices (mean and spread)")
        parser.add_argument("--seed", type=int, default=0, help="the first seed; the runs use seed .. seed+seeds-1")
        parser.add_argument("--start", choices=("shared", "own"), default="shared",
                            help="shared: every strategy starts from one random draw of --initial labels per seed; "
                                 "own: each picks its first labels itself (its cold start)")
        parser.add_argument("--test-fraction", type=float, default=0.25, help="held-out share, never queried")
        parser.add_argument("--feature-set", type=int, help="the feature set's id (default: the latest)")
        parser.add_argument("--out", type=Path, default=Path("var/simulations"), help="folder for the results")

    def handle(self, *args, **options):
        for name in ("initial", "step", "rounds", "seeds"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1, got {options[name]}")
        if not 0.05 <= options["test_fraction"] <= 0.5:
            raise CommandError(f"--test-fraction must lie between 0.05 and 0.5, got {options['test_fraction']}")
        dataset = dataset_named(options["dataset"])
        feature_set = feature_set_of(dataset, options["feature_set"])

        bars = PhaseBars(unit="round", stream=self.stderr)

        def progress(strategy: str, done: int, total: int) -> None:
            # "seed 0: margin" is one phase, not the phase "seed 0" with a detail.
            bars(done, total, strategy.replace(": ", " "))

        try:
            with bars:
                simulation = simulation_run(
                    dataset=dataset, feature_set=feature_set, oracle=options["oracle"],
                    strategies=options["strategy"], initial=options["initial"], step=options["step"],
                    rounds=options["rounds"], seeds=list(range(options["seed"], options["seed"] + options["seeds"])),
                    start=options["start"], test_fraction=options["test_fraction"], out_dir=options["out"],
                    progress=progress)
        except (OracleError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self._report(simulation)

    def _report(self, simulation) -> None:
        from mlcore.active.curves import table
        from mlcore.active.query import DEFAULT_STRATEGY

        parameters = simulation.parameters
        self.stdout.write(f"{parameters.get('n_pool')} galaxies to query, {parameters.get('n_test')} held out, "
                          f"features {parameters.get('model_version')}, start {parameters.get('start')}")
        for line in table(simulation.savings, default=DEFAULT_STRATEGY):
            self.stdout.write(line)
        savings = simulation.savings
        if savings.get("best"):
            row = savings["per_strategy"][savings["best"]]
            self.stdout.write(self.style.SUCCESS(
                f"{savings['best']} reached random's mean balanced accuracy at {savings['final_labels']} labels "
                f"({savings['target']:.3f}) with {row['labels_needed']} labels: {row['labels_saved']} labels saved "
                f"({row['saved_fraction']:.0%})"))
        else:
            self.stdout.write(f"no strategy reached random's mean balanced accuracy at {savings['final_labels']} "
                              f"labels ({savings['target']:.3f}) with fewer labels")
        self.stdout.write(f"simulation #{simulation.pk}: {simulation.out_dir}/learning_curves.json and .png")
