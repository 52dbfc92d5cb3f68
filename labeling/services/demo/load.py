"""The demo: real bundled galaxies, the real GZ2 Stripe 82 votes, simulated volunteers, consensus, demo users.

Every step is idempotent, so `make demo` can be run again on an existing database without duplicating anything.
"""

import json
import os
import secrets
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from labeling.models import (
    ClassifyPolicy,
    ConsensusRule,
    Dataset,
    DecisionTree,
    FeatureSet,
    Galaxy,
    Job,
    VolunteerClassification,
)
from labeling.services.demo.known import galaxy10_truths, gz2_example_truths, sdss_example_truths
from labeling.services.demo.oracle import demo_queue, demo_simulation, known_labels_split
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.imports.galaxies import galaxies_import
from labeling.services.imports.votes import votes_import
from labeling.services.labelling.labels import EXPERTS_GROUP
from labeling.services.learning.jobs import clustering_start, embedding_start, extraction_start, index_start
from labeling.services.learning.model_versions import model_version_get_or_create
from labeling.services.votes.aggregation import votes_aggregate
from labeling.services.votes.classify import subjects_ensure
from labeling.services.votes.consensus import consensus_compute
from labeling.services.votes.schemas import SHIPPED_SCHEMAS_DIR, read_schema_file, schema_load
from labeling.services.votes.trees import read_tree_file, shipped_tree_path, tree_load
from mlcore.votes.simulated import simulate_walks
from mlcore.votes.tree import parse_tree

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo_data"
SIMULATION_SEED = 20131001  # fixed, so every demo database shows the same simulated votes

GALAXY10 = "Galaxy10 DECaLS samples"
SDSS_EXAMPLES = "Galaxy Zoo SDSS examples"
GZ2_EXAMPLES = "GZ2 class examples"
STRIPE82 = "GZ2 Stripe 82 votes"

DATASETS = {
    GALAXY10: {"survey": "DESI Legacy Imaging Surveys (DECaLS)", "licence": "MIT",
               "description": "110 Galaxy10 DECaLS galaxies, 11 per class, with their Galaxy10 labels. Volunteer "
                              "votes shown for them are simulated from those labels.",
               "attribution": "Leung & Bovy, Galaxy10 DECaLS; Walmsley et al. 2022 (Galaxy Zoo DECaLS); "
                              "DESI Legacy Imaging Surveys."},
    SDSS_EXAMPLES: {"survey": "SDSS", "licence": "Apache-2.0",
                    "description": "The Galaxy Zoo science team's example images for the SDSS decision tree: each "
                                   "is an expert's answer to one question. Volunteer votes are simulated.",
                    "attribution": "Galaxy Zoo (zooniverse/Galaxy-Zoo); Sloan Digital Sky Survey."},
    GZ2_EXAMPLES: {"survey": "SDSS", "licence": "MIT",
                   "description": "SDSS galaxies illustrating GZ2 consensus class strings. Votes are simulated.",
                   "attribution": "Willett et al. 2013, MNRAS 435, 2835; Sloan Digital Sky Survey."},
    STRIPE82: {"survey": "SDSS Stripe 82", "licence": "MIT",
               "description": "Real Galaxy Zoo 2 volunteer votes for 19,761 Stripe 82 galaxies (data release "
                              "table 5). No images.",
               "attribution": "Willett et al. 2013, MNRAS 435, 2835 (Galaxy Zoo 2)."},
}


@dataclass
class DemoReport:
    lines: list[str] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)

    def add(self, line: str) -> None:
        self.lines.append(line)


def _seed_for(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode()) ^ SIMULATION_SEED


@transaction.atomic
def _simulate(dataset: Dataset, tree: DecisionTree, truths: dict[int, dict]) -> int:
    """Simulated classifications for galaxies that have none yet; returns how many galaxies got some."""
    spec = parse_tree(tree.as_definition())
    done = set(
        VolunteerClassification.objects.filter(
            galaxy__dataset=dataset, tree=tree, source=VolunteerClassification.Source.SIMULATED
        ).values_list("galaxy_id", flat=True)
    )
    rows = []
    for galaxy_id, truth in truths.items():
        if galaxy_id in done:
            continue
        seed = _seed_for(dataset.slug, tree.name, galaxy_id)
        difficulty = (seed % 1000) / 1000  # per-galaxy: some galaxies are easy, some divide the volunteers
        walks = simulate_walks(spec, truth, n_volunteers=20 + seed % 26, accuracy=0.92 - 0.35 * difficulty,
                               seed=seed)
        rows += [
            VolunteerClassification(galaxy_id=galaxy_id, tree=tree, answers=walk, volunteer_id=f"sim-{i:02d}",
                                    source=VolunteerClassification.Source.SIMULATED)
            for i, walk in enumerate(walks)
        ]
    VolunteerClassification.objects.bulk_create(rows, batch_size=2000)
    votes_aggregate(tree=tree, galaxy_ids=list(truths))
    return len(truths) - len(done & set(truths))


def _demo_users(report: DemoReport) -> None:
    path = Path(settings.VAR_DIR) / "demo-credentials.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    experts = Group.objects.get_or_create(name=EXPERTS_GROUP)[0]
    Group.objects.get_or_create(name="volunteers")
    for username, is_admin in [("admin", True), ("expert", False)]:
        password = saved.get(username) or secrets.token_urlsafe(9)
        user, created = User.objects.get_or_create(username=username)
        if created or not user.check_password(password):
            user.set_password(password)
        user.is_staff = user.is_superuser = is_admin
        user.save()
        user.groups.add(experts)
        saved[username] = password
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=1))
    path.chmod(0o600)
    report.credentials = saved


# The demo's machine-learning results: features of a seeded random ResNet-18 (no weights can be downloaded), their
# neighbour index, a k-means clustering and a UMAP map, so every page has something to show from the start.
DEMO_ANALYSES = {GALAXY10: 10, SDSS_EXAMPLES: 6}  # dataset -> clusters


def _run_inline(task, job) -> Job:
    task(job.pk)
    job.refresh_from_db()
    if job.status != Job.Status.SUCCEEDED:
        raise RuntimeError(f"demo job #{job.pk} ({job.get_kind_display()}) {job.status}: {job.message}")
    return job


def _analyse(dataset: Dataset, k: int, report: DemoReport) -> None:
    """Features, index, clusters and map for one dataset, each only when missing (safe to run again)."""
    from labeling import tasks

    version = model_version_get_or_create(backbone="resnet18", weights="galaxy")
    feature_set = FeatureSet.objects.filter(dataset=dataset, model_version=version, rotation_invariant=False).first()
    with_images = dataset.galaxies.exclude(image="").count()
    if feature_set is None or feature_set.count + len(feature_set.failed) < with_images:
        _run_inline(partial(tasks.extract_features, split=False), extraction_start(
            dataset=dataset, model_version=version, enqueue=False, threads=os.cpu_count()))
        feature_set = FeatureSet.objects.get(dataset=dataset, model_version=version, rotation_invariant=False)
    if not feature_set.has_index or feature_set.index_is_stale:
        _run_inline(tasks.build_index, index_start(feature_set=feature_set, enqueue=False))
    if not feature_set.clusterings.exists():
        _run_inline(tasks.cluster, clustering_start(feature_set=feature_set, method="kmeans", k=k, enqueue=False))
    if not feature_set.embeddings.exists():
        _run_inline(tasks.embed_2d, embedding_start(feature_set=feature_set, method="umap", enqueue=False))
    fitted = _fit_probability_models(dataset, feature_set)
    report.add(f"dataset {dataset.name!r}: {feature_set.count} galaxies with {version.name} features, "
               f"a neighbour index, {feature_set.clusterings.count()} clustering(s), "
               f"{feature_set.embeddings.count()} map(s), probability models for {', '.join(fitted) or 'no schema'}")


def _fit_probability_models(dataset: Dataset, feature_set: FeatureSet) -> list[str]:
    """The labelling page's predictions from the start: one model per schema that labels the dataset."""
    from labeling.models import Classifier
    from labeling.selectors.labels import label_sets
    from labeling.services.learning.classifier import classifier_fit

    fitted = []
    for schema in {label_set.schema for label_set in label_sets(dataset=dataset)}:
        if not Classifier.objects.filter(feature_set=feature_set, schema=schema).exists():
            try:
                classifier_fit(feature_set=feature_set, schema=schema)
            except ValueError:  # one class only: nothing to tell apart yet
                continue
        fitted.append(schema.name)
    return sorted(fitted)


def demo_load(*, progress: Callable | None = None, include_stripe82: bool = True,
              analyse: bool = True) -> DemoReport:
    """Load everything the demo shows; safe to call again. Returns what was done and the demo logins.

    With ``analyse`` the imaged datasets also get features, a neighbour index, clusters and a 2-D map.
    """
    report = DemoReport()
    # Reloaded every time, so a database made by an older version gets the shipped trees' help and examples.
    gz2, gz_decals = (tree_load(definition=read_tree_file(shipped_tree_path(name))) for name in ("gz2", "gz_decals"))
    # Reloaded too, so an older database's rules read the fractions the shipped ones name (debiased first).
    for name in ("galaxy10", "broad-morphology", "gz2-t01-flags", "gz2-t02-flags"):
        schema_load(definition=read_schema_file(SHIPPED_SCHEMAS_DIR / f"{name}.json"))
    for name, meta in DATASETS.items():
        dataset_get_or_create(name=name, **meta)

    # Galaxy10 is the expert's main work: only a few labels per class go in, the rest stay an oracle. The other
    # imaged sets hold one or a few examples per answer, too few to hold any back.
    # A database made before the held-back labels keeps its galaxy names (renaming would import every image twice).
    older = Galaxy.objects.filter(dataset__name=GALAXY10, external_id__startswith="g10_class_").exists()
    known = known_labels_split(source=DEMO_DATA / "galaxy10" / "labels.csv", out_dir=Path(settings.VAR_DIR) / "demo",
                               id_prefix=None if older else "g10-", seed=SIMULATION_SEED)
    imports = [
        (GALAXY10, "folder", DEMO_DATA / "galaxy10", "galaxy10", known.imported),
        (SDSS_EXAMPLES, "gz-examples", DEMO_DATA / "gz_examples_sloan", None, None),
        (GZ2_EXAMPLES, "folder", DEMO_DATA / "gz2_examples", "gz2-class", None),
    ]
    for name, fmt, path, schema, labels_csv in imports:
        result = galaxies_import(dataset_name=name, fmt=fmt, path=path, schema_name=schema, labels_csv=labels_csv,
                                 progress=progress)
        report.add(result.summary())
    report.add(f"dataset {GALAXY10!r}: {known.held_back} known labels held back as an oracle ({known.oracle})" + (
        "; this database was made by an older demo and keeps every imported label (`make clean` starts afresh)"
        if older else ""))
    if include_stripe82:
        result = votes_import(dataset_name=STRIPE82, fmt="gz2-table",
                              path=DEMO_DATA / "gz2_stripe82" / "gz2_table5_stripe82_votes.csv.gz", progress=progress)
        report.add(result.summary())

    datasets = {d.name: d for d in Dataset.objects.filter(name__in=DATASETS)}
    simulated = [
        (datasets[GALAXY10], gz_decals, galaxy10_truths(datasets[GALAXY10], known.oracle)),
        (datasets[SDSS_EXAMPLES], gz2, sdss_example_truths(datasets[SDSS_EXAMPLES], gz2)),
        (datasets[GZ2_EXAMPLES], gz2, gz2_example_truths(datasets[GZ2_EXAMPLES])),
    ]
    for dataset, tree, truths in simulated:
        added = _simulate(dataset, tree, truths)
        report.add(f"dataset {dataset.name!r}: simulated volunteers for {added} new galaxies "
                   f"({len(truths)} with known answers)")

    rules = ConsensusRule.objects.select_related("schema", "tree")
    for dataset_name, rule_names in [
        (GALAXY10, [("galaxy10", "gz-decals-thresholds"), ("broad-morphology", "gz-decals-thresholds")]),
        (SDSS_EXAMPLES, [("broad-morphology", "gz2-thresholds")]),
        (GZ2_EXAMPLES, [("broad-morphology", "gz2-thresholds")]),
        (STRIPE82, [("broad-morphology", "gz2-thresholds"), ("gz2-t01-flags", "gz2-flags"),
                    ("gz2-t02-flags", "gz2-flags")]),
    ]:
        if dataset_name not in datasets:
            continue
        for schema_name, rule_name in rule_names:
            rule = rules.get(schema__name=schema_name, name=rule_name)
            tally = consensus_compute(rule=rule, dataset=datasets[dataset_name])
            shown = ", ".join(f"{k} {v}" for k, v in sorted(tally.items()))
            report.add(f"consensus {schema_name} on {dataset_name!r}: {shown}")
    _open_for_volunteers(datasets[GALAXY10], gz_decals, rules.get(schema__name="galaxy10",
                                                                  name="gz-decals-thresholds"), report)
    _demo_users(report)
    if analyse:
        for name, k in DEMO_ANALYSES.items():
            _analyse(datasets[name], k, report)
        _expert_work(datasets[GALAXY10], known.oracle, report)
    _import_sample(report)
    return report


def _expert_work(dataset: Dataset, oracle: Path, report: DemoReport) -> None:
    """A finished simulation for /simulations/ and a full queue for the expert, both from the held-back labels."""
    from labeling.models import LabelSchema

    feature_set = FeatureSet.objects.filter(dataset=dataset, rotation_invariant=False).latest("pk")
    simulation = demo_simulation(dataset=dataset, feature_set=feature_set, oracle=oracle,
                                 out_dir=Path(settings.VAR_DIR) / "simulations" / "demo-galaxy10")
    report.add(f"dataset {dataset.name!r}: active-learning simulation #{simulation.pk} on /simulations/")
    waiting = demo_queue(dataset=dataset, schema=LabelSchema.objects.get(name="galaxy10"),
                         expert=User.objects.get(username="expert"))
    report.add(f"dataset {dataset.name!r}: {waiting} galaxies waiting in the expert's queue (schema galaxy10); "
               f"check the labels given against the held-back ones with: manage.py check_labels --dataset "
               f"'{dataset.name}' --schema galaxy10 --known {oracle}")


def _import_sample(report: "DemoReport") -> None:
    """A catalogue in the import folder, so that the Jobs page's "Import galaxies" has something to offer: the
    Galaxy10 samples (a folder of images with labels.csv), copied once and left alone afterwards."""
    sample = Path(settings.GALAXY_IMPORT_ROOT) / "galaxy10-sample"
    if not sample.exists():
        shutil.copytree(DEMO_DATA / "galaxy10", sample)
    report.add(f"import folder {settings.GALAXY_IMPORT_ROOT}: galaxy10-sample, to import on /jobs/ "
               "(format 'folder', schema galaxy10)")


def _open_for_volunteers(dataset: Dataset, tree, early_rule, report: "DemoReport") -> None:
    """Galaxy10 on the classify page with the GZ DECaLS tree: retired after 20 classifications here, or after 5
    when the volunteers' consensus and the model agree."""
    policy, _ = ClassifyPolicy.objects.get_or_create(dataset=dataset, defaults={"tree": tree,
                                                                                "early_rule": early_rule})
    added = subjects_ensure(policy=policy)
    report.add(f"dataset {dataset.name!r}: open to volunteers on /classify/ ({added} new subjects)")
