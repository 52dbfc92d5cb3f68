"""The "votes" export: a dataset's volunteer vote summaries in the Galaxy Zoo layout they came in, one row per galaxy,
in a file that import_votes reads back into the same VoteSummary rows (labeling/services/exports/vote_columns.py
names the columns).

Which layout: summaries of the gz2 tree without counts came from Kaggle's cumulative probabilities (gz2-kaggle);
other gz2 summaries, imported or aggregated from classifications made here, are a GZ2 table (gz2-table); gz_decals
summaries a GZ DECaLS catalogue (gz-decals). A dataset with votes in more than one layout needs the layout named. A
galaxy with both imported and aggregated summaries in the layout gets the source with more volunteers on the first
question, as its consensus does (labeling/services/votes/consensus.py).

Streamed: galaxies are read in chunks ordered by id, and each chunk's summaries with one query.
"""

from collections.abc import Iterator
from itertools import islice

from django.db import connection
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q

from labeling.models import Dataset, DecisionTree, Galaxy, VoteSummary
from labeling.services.exports.vote_columns import Stored, VoteColumns
from labeling.services.imports.votes import FORMATS
from labeling.services.votes.trees import read_tree_file, shipped_tree_path

# Galaxies per query of their summaries. A GZ2 galaxy has 11, each with three or four JSON objects to decode:
# exporting the Stripe 82 table, 500 galaxies a chunk add 23 MB to the peak memory, 2,000 add 90 MB, at the same
# speed.
CHUNK = 500
LAYOUTS = tuple(FORMATS)
# (tree, whether the summaries have no counts) -> layout
LAYOUT_OF = {("gz2", False): "gz2-table", ("gz2", True): "gz2-kaggle", ("gz_decals", False): "gz-decals"}
# Between sources of one galaxy with equally many volunteers, the published catalogue.
SOURCE_PREFERENCE = (VoteSummary.Source.CATALOGUE, VoteSummary.Source.AGGREGATED)
# The JSON functions that list an object's keys (to find every published column), per database.
JSON_KEYS = {
    # jsonb_each and jsonb_object_keys fail on anything but an object, hence the CASEs.
    "postgresql": ("CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(sub.extra) = 'object' THEN sub.extra "
                   "ELSE '{}'::jsonb END) AS e CROSS JOIN LATERAL jsonb_object_keys(CASE WHEN "
                   "jsonb_typeof(e.value) = 'object' THEN e.value ELSE '{}'::jsonb END) AS a(key)"),
    "sqlite": ("JOIN json_each(sub.extra) AS e "
               "JOIN json_each(CASE WHEN e.type = 'object' THEN e.value ELSE '{}' END) AS a"),
}


def layouts_found(*, dataset: Dataset) -> dict[str, set[str]]:
    """The layouts of the dataset's vote summaries, each with its sources ("catalogue", "aggregated"); summaries of
    trees without a Galaxy Zoo layout are listed under the key "tree <name>"."""
    no_counts = ExpressionWrapper(Q(counts__isnull=True), output_field=BooleanField())
    found: dict[str, set[str]] = {}
    # order_by(): the model's default ordering would join into the DISTINCT and make every summary a row.
    rows = (VoteSummary.objects.filter(galaxy__dataset=dataset).annotate(no_counts=no_counts).order_by()
            .values_list("question__tree__name", "no_counts", "source").distinct())
    for tree, without_counts, source in rows:
        found.setdefault(LAYOUT_OF.get((tree, bool(without_counts)), f"tree {tree}"), set()).add(source)
    return found


def vote_rows(*, dataset: Dataset, layout: str | None = None) -> tuple[Iterator[dict], list[str]]:
    """(rows, columns) of the votes export. The columns are settled (and every error raised) before the first row.

    Args:
        dataset: whose votes.
        layout: "gz2-table", "gz2-kaggle" or "gz-decals"; needed only when the dataset has votes in more than one.
            A layout the dataset has no votes in gives the header alone.

    Raises:
        ValueError: for an unknown layout, a dataset without votes in any layout, or one with votes in several
            when ``layout`` is None; the message names the choices.
    """
    found = layouts_found(dataset=dataset)
    exportable = sorted(name for name in found if name in LAYOUTS)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"unknown vote layout {layout!r}; one of {', '.join(LAYOUTS)}")
    if layout is None:
        if not exportable:
            others = sorted(name for name in found if name not in LAYOUTS)
            held = f" (its votes are of {', '.join(others)}, which no Galaxy Zoo layout names)" if others else ""
            raise ValueError(f"dataset {dataset.name!r} has no volunteer votes in a Galaxy Zoo layout{held}")
        if len(exportable) > 1:
            choices = "; ".join(f"{name} ({' and '.join(sorted(found[name]))})" for name in exportable)
            raise ValueError(f"dataset {dataset.name!r} holds votes in {len(exportable)} layouts: {choices}; "
                             f"choose one with layout (--layout)")
        layout = exportable[0]
    tree_name = FORMATS[layout]
    # Unordered: a chunk's summaries are grouped here, and the default ordering costs a join and a sort.
    summaries = VoteSummary.objects.filter(question__tree__name=tree_name,
                                           counts__isnull=layout == "gz2-kaggle").order_by()
    galaxies = Galaxy.objects.filter(dataset=dataset).filter(Exists(summaries.filter(galaxy=OuterRef("pk"))))
    coordinates = galaxies.filter(Q(ra__isnull=False) | Q(dec__isnull=False)).exists()
    columns = VoteColumns(layout=layout, tree=tree_definition(tree_name), coordinates=coordinates,
                          extras=_published_columns(summaries.filter(galaxy__dataset=dataset)))
    return _rows(galaxies, summaries, columns), list(columns.columns)


def tree_definition(tree_name: str) -> dict:
    """The tree's definition as stored, else as shipped."""
    tree = DecisionTree.objects.filter(name=tree_name).first()
    # No votes of the tree were ever stored (a layout asked for by name): the shipped tree names the columns.
    return tree.as_definition() if tree is not None else read_tree_file(shipped_tree_path(tree_name))


def _published_columns(summaries) -> dict[str, dict[str, set[str]]]:
    """question key -> suffix -> answers: the other published columns the summaries kept (VoteSummary.extra), found
    by the database so that the columns are known before the first row without reading every summary here."""
    sql, params = summaries.annotate(question_key=F("question__key")).values_list(
        "question_key", "extra").query.sql_with_params()
    if connection.vendor not in JSON_KEYS:
        raise NotImplementedError(f"the votes export lists JSON keys on PostgreSQL and SQLite, not {connection.vendor}")
    query = f"SELECT DISTINCT sub.question_key, e.key, a.key FROM ({sql}) AS sub {JSON_KEYS[connection.vendor]}"
    published: dict[str, dict[str, set[str]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        for question, suffix, answer in cursor.fetchall():
            if answer is not None:
                published.setdefault(question, {}).setdefault(suffix, set()).add(answer)
    return published


def in_chunks(iterator: Iterator, size: int) -> Iterator[list]:
    """Lists of ``size`` items from ``iterator`` (the last one shorter)."""
    while chunk := list(islice(iterator, size)):
        yield chunk


def _rows(galaxies, summaries, columns: VoteColumns) -> Iterator[dict]:
    for (_, external_id, ra, dec), chosen in galaxy_summaries(galaxies, summaries, root=columns.root,
                                                              fields=("pk", "external_id", "ra", "dec")):
        yield columns.row(external_id, ra, dec, chosen)


def galaxy_summaries(galaxies, summaries, *, root: str, fields: tuple[str, ...]
                     ) -> Iterator[tuple[tuple, dict[str, Stored]]]:
    """Each galaxy's values (``fields`` of ``galaxies``, the first one "pk") with its summaries of one source,
    question key -> Stored, in galaxy id order: where a galaxy has both imported and aggregated summaries, the source
    with more volunteers on the ``root`` question (the catalogue's when equal). Read in chunks of CHUNK galaxies,
    each chunk's summaries with one query; galaxies whose summaries are gone since are skipped."""
    values = ("galaxy_id", "source", "question__key", "counts", "total", "fractions", "reach", "extra")
    for chunk in in_chunks(galaxies.order_by("pk").values_list(*fields).iterator(CHUNK), CHUNK):
        stored: dict[int, dict[str, dict[str, Stored]]] = {}  # galaxy id -> source -> question key -> values
        for galaxy_id, source, key, *rest in summaries.filter(
                galaxy_id__in=[galaxy[0] for galaxy in chunk]).values_list(*values):
            stored.setdefault(galaxy_id, {}).setdefault(source, {})[key] = Stored(*rest)
        for galaxy in chunk:
            by_source = stored.get(galaxy[0])
            if not by_source:
                continue  # its votes were deleted since the galaxies were read
            # max() keeps the first of equals: the catalogue's when both have as many volunteers.
            source = max((s for s in SOURCE_PREFERENCE if s in by_source),
                         key=lambda s: _volunteers(by_source[s], root))
            yield galaxy, by_source[source]


def _volunteers(summaries: dict[str, Stored], root: str) -> int:
    """How many volunteers answered the first question (0 when unknown)."""
    first = summaries.get(root)
    return (first.total or 0) if first is not None else 0
