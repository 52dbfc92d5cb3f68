"""The "zoobot" layout of the votes export: the catalogue Zoobot fine-tunes on (its guide "Training on Vote
Counts"): ``id_str``, ``file_loc`` (the galaxy's image on disk), then per question ``<question>_total-votes`` and one
``<question>_<answer>`` vote count per answer. A question nobody answered has 0 votes, never an empty cell: Zoobot
sums the counts, and a blank would read as NaN.

Where the counts come from:

- the volunteers' votes of the gz_decals tree. Its keys are GZ DECaLS's, so the columns are Zoobot's
  ``decals_pairs`` (``smooth-or-featured_smooth``...) and, with the suffix "-dr5", exactly its
  ``decals_dr5_ortho_pairs`` (``smooth-or-featured-dr5_smooth``...), in the same order.
- the volunteers' votes of the gz2 tree (counts, not Kaggle's probabilities), renamed to Zoobot's ``gz2_pairs``
  (``t01_smooth_or_features`` / ``a02_features_or_disk`` -> ``smooth-or-featured_featured-or-disk``; "-gz2" gives
  ``gz2_ortho_pairs``). GZ2's odd-feature question, which Zoobot has no name for, is written as ``odd-feature_ring``
  and so on: a fine-tuning schema that does not list it ignores it.
- a label schema's expert labels: question = the schema's name, answers = its class keys, a galaxy's count of a
  class = how many current expert labels give it (one expert: one-hot). An admin's resolution settles a galaxy: it
  is then one vote for the resolved class, as retraining reads labels (resolutions first).

Only galaxies whose image file exists are written (Zoobot opens every ``file_loc``); those without an image or whose
file is missing are counted in ``ZoobotRows.left_out``.
"""

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from django.db.models import Exists, OuterRef, Q

from labeling.models import ExpertLabel, Galaxy, LabelResolution, LabelSchema, VoteSummary
from labeling.services.exports.votes import CHUNK, galaxy_summaries, in_chunks, layouts_found, tree_definition

LAYOUT = "zoobot"
TREES = ("gz_decals", "gz2")
# The hyphen may be left out: argparse takes "--zoobot-suffix -dr5" for an option ("--zoobot-suffix=-dr5" works).
SUFFIX = re.compile(r"-?[A-Za-z0-9]+")
# Our gz2 tree's keys (those of the GZ2 tables) -> the names of Zoobot's gz2_pairs (zoobot/shared/label_metadata.py).
GZ2_AS_ZOOBOT = {
    "t01_smooth_or_features": ("smooth-or-featured", {"a01_smooth": "smooth", "a02_features_or_disk":
                                                      "featured-or-disk", "a03_star_or_artifact": "artifact"}),
    "t02_edgeon": ("disk-edge-on", {"a04_yes": "yes", "a05_no": "no"}),
    "t03_bar": ("bar", {"a06_bar": "yes", "a07_no_bar": "no"}),
    "t04_spiral": ("has-spiral-arms", {"a08_spiral": "yes", "a09_no_spiral": "no"}),
    "t05_bulge_prominence": ("bulge-size", {"a10_no_bulge": "no", "a11_just_noticeable": "just-noticeable",
                                            "a12_obvious": "obvious", "a13_dominant": "dominant"}),
    "t06_odd": ("something-odd", {"a14_yes": "yes", "a15_no": "no"}),
    "t07_rounded": ("how-rounded", {"a16_completely_round": "round", "a17_in_between": "in-between",
                                    "a18_cigar_shaped": "cigar"}),
    "t09_bulge_shape": ("bulge-shape", {"a25_rounded": "round", "a26_boxy": "boxy", "a27_no_bulge": "no-bulge"}),
    "t10_arms_winding": ("spiral-winding", {"a28_tight": "tight", "a29_medium": "medium", "a30_loose": "loose"}),
    "t11_arms_number": ("spiral-arm-count", {"a31_1": "1", "a32_2": "2", "a33_3": "3", "a34_4": "4",
                                             "a36_more_than_4": "more-than-4", "a37_cant_tell": "cant-tell"}),
}
_GZ_PREFIX = re.compile(r"^[ta]\d+_")


class ZoobotOptionError(ValueError):
    """A zoobot option that cannot be used; ``option`` names it as the API's query parameter is named."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option


def _plain(key: str) -> str:
    """A GZ2 key without its tNN_/aNN_ number, hyphenated as Zoobot's names are: t08_odd_feature -> odd-feature."""
    return _GZ_PREFIX.sub("", key).replace("_", "-")


class ZoobotRows:
    """The rows, streamed; after iteration ``left_out`` says how many galaxies had no image file to point to."""

    def __init__(self, rows_of):
        self._rows_of = rows_of
        self.left_out = 0

    def __iter__(self) -> Iterator[dict]:
        return self._rows_of(self)


def zoobot_rows(*, dataset, schema: str | None = None, tree: str | None = None, suffix: str = "",
                copy_images: Path | None = None) -> tuple[ZoobotRows, list[str]]:
    """(rows, columns) of the zoobot layout; the columns are settled and every error raised before the first row.

    Args:
        dataset: whose votes or labels.
        schema: a label schema's name: its expert labels as one-hot counts. None: the volunteers' votes.
        tree: "gz_decals" or "gz2", needed only when the dataset has counted votes of both (and not with schema).
        suffix: appended to every question name after a hyphen, e.g. "dr5" or "-gz2" (Zoobot's shipped schemas).
        copy_images: a folder to copy the images into (named <galaxy id><suffix>); file_loc then points there.

    Raises:
        ZoobotOptionError: (a ValueError) naming the option: a malformed suffix, an unknown schema or tree, both a
            schema and a tree, a file as --copy-images, or vote counts of both trees and none chosen.
        ValueError: when the dataset has no vote counts of a tree Zoobot's names cover.
    """
    if suffix and not SUFFIX.fullmatch(suffix):
        raise ZoobotOptionError("zoobot_suffix", f"zoobot suffix {suffix!r} (--zoobot-suffix): letters or digits "
                                                 f"after an optional hyphen, e.g. dr5 or -gz2")
    suffix = suffix and "-" + suffix.removeprefix("-")
    if schema is not None and tree is not None:
        raise ZoobotOptionError("schema", "zoobot layout: give a schema (--schema, expert labels) or a tree "
                                          "(--tree, volunteer votes), not both")
    files = _ImageFiles(copy_images)
    if schema is not None:
        return _schema_rows(dataset, schema, suffix, files)
    return _tree_rows(dataset, _tree_of(dataset, tree), suffix, files)


def _tree_of(dataset, tree: str | None) -> str:
    counted = {"gz-decals": "gz_decals", "gz2-table": "gz2"}  # layouts with counts -> their tree
    found = sorted(counted[layout] for layout in layouts_found(dataset=dataset) if layout in counted)
    if tree is not None:
        if tree not in TREES:
            raise ZoobotOptionError("tree", f"zoobot layout: unknown tree {tree!r} (--tree); one of "
                                            f"{', '.join(TREES)}")
        return tree
    if not found:
        raise ValueError(f"dataset {dataset.name!r} has no volunteer vote counts of the {' or '.join(TREES)} tree "
                         f"(Zoobot trains on counts, not Kaggle's probabilities); export a label schema's expert "
                         f"labels with schema (--schema) instead")
    if len(found) > 1:
        raise ZoobotOptionError("tree", f"dataset {dataset.name!r} holds vote counts of {' and '.join(found)}; "
                                        f"choose one with tree (--tree)")
    return found[0]


def _tree_rows(dataset, tree_name: str, suffix: str, files: "_ImageFiles") -> tuple[ZoobotRows, list[str]]:
    definition = tree_definition(tree_name)
    # (question key, its name here, [(answer key, column)]) in the tree's order
    questions = []
    for question in definition["questions"]:
        name, answers = _zoobot_names(tree_name, question)
        questions.append((question["key"], name + suffix, [
            (answer, f"{name}{suffix}_{renamed}") for answer, renamed in answers.items()]))
    columns = ["id_str", "file_loc"]
    for _, name, answers in questions:
        columns += [f"{name}_total-votes", *(column for _, column in answers)]
    summaries = VoteSummary.objects.filter(question__tree__name=tree_name, counts__isnull=False).order_by()
    galaxies = Galaxy.objects.filter(dataset=dataset).filter(Exists(summaries.filter(galaxy=OuterRef("pk"))))
    root = definition["questions"][0]["key"]

    def rows(report: ZoobotRows) -> Iterator[dict]:
        for (galaxy_id, external_id, image), chosen in galaxy_summaries(
                galaxies, summaries, root=root, fields=("pk", "external_id", "image")):
            file_loc = files.place(galaxy_id, image)
            if file_loc is None:
                report.left_out += 1
                continue
            row = {"id_str": external_id, "file_loc": file_loc}
            for key, name, answers in questions:
                summary = chosen.get(key)
                counts = (summary.counts or {}) if summary is not None else {}
                for answer, column in answers:
                    row[column] = int(counts.get(answer) or 0)
                # The sum of the counts written, which is what Zoobot's loss takes a question's total to be.
                row[f"{name}_total-votes"] = sum(row[column] for _, column in answers)
            yield row

    return ZoobotRows(rows), columns


def _zoobot_names(tree_name: str, question: dict) -> tuple[str, dict[str, str]]:
    """A question's name in Zoobot's schemas and its answers' (answer key -> name), in the tree's order. GZ DECaLS
    keys are Zoobot's already; GZ2's are renamed (GZ2_AS_ZOOBOT), those Zoobot lacks by dropping their numbers."""
    keys = [answer["key"] for answer in question["answers"]]
    if tree_name != "gz2":
        return question["key"], {key: key for key in keys}
    name, renamed = GZ2_AS_ZOOBOT.get(question["key"], (_plain(question["key"]), {}))
    return name, {key: renamed.get(key) or _plain(key) for key in keys}


def _schema_rows(dataset, schema_name: str, suffix: str, files: "_ImageFiles") -> tuple[ZoobotRows, list[str]]:
    schema = LabelSchema.objects.filter(name=schema_name).first()
    if schema is None:
        known = ", ".join(LabelSchema.objects.values_list("name", flat=True)) or "none yet"
        raise ZoobotOptionError("schema", f"zoobot layout: no label schema {schema_name!r} (--schema; schemas: "
                                          f"{known})")
    keys = list(schema.classes.values_list("key", flat=True))
    name = schema.name + suffix
    columns = ["id_str", "file_loc", f"{name}_total-votes", *(f"{name}_{key}" for key in keys)]
    current = ExpertLabel.objects.filter(schema=schema, superseded_at__isnull=True)
    resolutions = LabelResolution.objects.filter(schema=schema)
    galaxies = Galaxy.objects.filter(dataset=dataset).filter(
        Q(Exists(current.filter(galaxy=OuterRef("pk")))) | Q(Exists(resolutions.filter(galaxy=OuterRef("pk")))))

    def rows(report: ZoobotRows) -> Iterator[dict]:
        for chunk in in_chunks(galaxies.order_by("pk").values_list("pk", "external_id", "image").iterator(CHUNK),
                             CHUNK):
            ids = [galaxy_id for galaxy_id, *_ in chunk]
            counts: dict[int, dict[str, int]] = {}
            for galaxy_id, key in current.filter(galaxy_id__in=ids).values_list("galaxy_id", "label_class__key"):
                counts.setdefault(galaxy_id, {}).setdefault(key, 0)
                counts[galaxy_id][key] += 1
            for galaxy_id, key in resolutions.filter(galaxy_id__in=ids).values_list("galaxy_id",
                                                                                    "label_class__key"):
                counts[galaxy_id] = {key: 1}
            for galaxy_id, external_id, image in chunk:
                file_loc = files.place(galaxy_id, image)
                if file_loc is None:
                    report.left_out += 1
                    continue
                given = counts.get(galaxy_id, {})
                row = {"id_str": external_id, "file_loc": file_loc,
                       f"{name}_total-votes": sum(given.get(key, 0) for key in keys)}
                row.update({f"{name}_{key}": given.get(key, 0) for key in keys})
                yield row

    return ZoobotRows(rows), columns


class _ImageFiles:
    """Where a galaxy's file_loc points: its stored image (absolute path), or a copy in ``copy_to``."""

    def __init__(self, copy_to: Path | None):
        self.storage = Galaxy._meta.get_field("image").storage
        self.copy_to = copy_to.resolve() if copy_to is not None else None
        if self.copy_to is not None and self.copy_to.exists() and not self.copy_to.is_dir():
            raise ZoobotOptionError("copy_images", f"--copy-images {copy_to}: is a file, not a folder")

    def place(self, galaxy_id: int, name: str) -> str | None:
        """The absolute path to write as file_loc, or None when the galaxy has no image or its file is missing."""
        if not name:
            return None
        source = Path(self.storage.path(name))
        if not source.is_file():
            return None
        if self.copy_to is None:
            return str(source)
        self.copy_to.mkdir(parents=True, exist_ok=True)
        target = self.copy_to / f"{galaxy_id}{source.suffix.lower()}"
        shutil.copyfile(source, target)
        return str(target)
