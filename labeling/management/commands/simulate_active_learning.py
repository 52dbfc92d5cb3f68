"""Measure what active learning saves: `python manage.py simulate_active_learning --dataset NAME --oracle LABELS.csv
--strategy S [--strategy S2 ...] [--initial 20] [--step 20] [--rounds 15] [--seed 0] [--out DIR]`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.management.jobs import dataset_named, feature_set_of
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
        parser.add_argument("--rounds", type=int, default=15)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--test-fraction", type=float, default=0.25, help="held-out share, never queried")
        parser.add_argument("--feature-set", type=int, help="the feature set's id (default: the latest)")
        parser.add_argument("--out", type=Path, default=Path("var/simulations"), help="folder for the results")

    def handle(self, *args, **options):
        for name in ("initial", "step", "rounds"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1, got {options[name]}")
        if not 0.05 <= options["test_fraction"] <= 0.5:
            raise CommandError(f"--test-fraction must lie between 0.05 and 0.5, got {options['test_fraction']}")
        dataset = dataset_named(options["dataset"])
        feature_set = feature_set_of(dataset, options["feature_set"])

        def progress(strategy: str, done: int, total: int) -> None:
            self.stderr.write(f"\r{strategy}: round {done}/{total}", ending="\n" if done == total else "")

        try:
            simulation = simulation_run(
                dataset=dataset, feature_set=feature_set, oracle=options["oracle"], strategies=options["strategy"],
                initial=options["initial"], step=options["step"], rounds=options["rounds"], seed=options["seed"],
                test_fraction=options["test_fraction"], out_dir=options["out"], progress=progress)
        except (OracleError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self._report(simulation)

    def _report(self, simulation) -> None:
        parameters = simulation.parameters
        self.stdout.write(f"{parameters.get('n_pool')} galaxies to query, {parameters.get('n_test')} held out, "
                          f"features {parameters.get('model_version')}")
        self.stdout.write(f"{'strategy':<18} {'labels':>6} {'accuracy':>9} {'balanced':>9} {'seconds':>8}")
        for strategy, points in simulation.curves.items():
            last = points[-1]
            self.stdout.write(f"{strategy:<18} {last['labels']:>6} {last['accuracy']:>9.3f} "
                              f"{last['balanced_accuracy']:>9.3f} {simulation.seconds.get(strategy, 0):>8.1f}")
        savings = simulation.savings
        if savings.get("best"):
            self.stdout.write(self.style.SUCCESS(
                f"{savings['best']} reached random's final accuracy ({savings['baseline_final_accuracy']:.3f} at "
                f"{savings['baseline_labels']} labels) with {savings['per_strategy'][savings['best']]} labels: "
                f"{savings['labels_saved']} labels saved"))
        else:
            self.stdout.write("no strategy reached random's final accuracy with fewer labels")
        self.stdout.write(f"simulation #{simulation.pk}: {simulation.out_dir}/learning_curves.json and .png")
