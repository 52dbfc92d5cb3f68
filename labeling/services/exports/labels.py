"""The "labels" export: for each galaxy and schema, its current expert labels, its consensus label, its admin
resolution, then its "final" label, each row with its provenance (source, rule, who, when).

The final label follows the order of trust the rest of the application uses: an admin's resolution; else the
experts' current labels (labeling.selectors.expert_majority, the rule galaxy_labels applies); else the volunteers'
consensus unless it is the rule's uncertain class. A galaxy with none of these has no final row.

One pass: three querysets sorted alike, by (galaxy, schema), are merged and read one galaxy at a time, so memory
stays flat however many galaxies the dataset has, and each label is read from the database once.
"""

import heapq
from collections.abc import Iterator
from itertools import groupby

from labeling.models import ConsensusLabel, ConsensusRule, Dataset, ExpertLabel, LabelResolution
from labeling.selectors.expert_majority import majority_class

CHUNK = 5000
LABEL_COLUMNS = ["galaxy_id", "external_id", "schema", "kind", "label", "label_name", "source", "who", "when",
                 "rule", "agreement", "n_votes", "note", "fractions"]
EXPERT, CONSENSUS, RESOLUTION = 0, 1, 2  # the order of a galaxy's rows; the final one comes last
EXPERT_RULE = "majority of the experts' current labels, the latest breaking ties"


def label_rows(dataset: Dataset) -> Iterator[dict]:
    """Rows of the labels export, grouped by galaxy (by id) and schema (by id)."""
    uncertain: dict[int, set[str]] = {}
    for schema_id, key in ConsensusRule.objects.values_list("schema_id", "uncertain_class_key"):
        uncertain.setdefault(schema_id, set()).add(key)
    experts = _sorted_by_galaxy(
        # Oldest first within a galaxy, as majority_class wants them.
        ExpertLabel.objects.filter(galaxy__dataset=dataset, superseded_at__isnull=True).order_by(
            "galaxy_id", "schema_id", "created_at", "pk"),
        "provenance", "expert__username", "created_at", "note")
    consensus = _sorted_by_galaxy(
        ConsensusLabel.objects.filter(galaxy__dataset=dataset).order_by("galaxy_id", "schema_id"),
        "rule__name", "rule__tree__name", "agreement", "n_votes", "computed_at", "fractions_used")
    resolutions = _sorted_by_galaxy(
        LabelResolution.objects.filter(galaxy__dataset=dataset).order_by("galaxy_id", "schema_id"),
        "resolved_by__username", "resolved_at", "note")
    merged = heapq.merge(_rows(experts, EXPERT, _expert), _rows(consensus, CONSENSUS, _consensus),
                         _rows(resolutions, RESOLUTION, _resolution))
    for (_, schema_id), group in groupby(merged, key=lambda item: (item[0], item[1])):
        given: dict[int, list[dict]] = {}
        for *_, kind, row in group:
            given.setdefault(kind, []).append(row)
            yield row
        final = _final(given, uncertain.get(schema_id, ()))
        if final is not None:
            yield final


def _sorted_by_galaxy(queryset, *fields: str) -> Iterator[tuple]:
    """Rows of (galaxy id, schema id, external id, schema name, class key, class name, *fields)."""
    return queryset.values_list("galaxy_id", "schema_id", "galaxy__external_id", "schema__name", "label_class__key",
                                "label_class__name", *fields).iterator(CHUNK)


def _rows(rows: Iterator[tuple], kind: int, as_row) -> Iterator[tuple]:
    # The kind comes before the row so that the merge never compares two rows (a dict does not compare), and puts
    # a galaxy's expert labels before its consensus before its resolution.
    for values in rows:
        yield values[0], values[1], kind, as_row(values)


def _row(values: tuple, kind: str, source: str, who: str, when: str, rule="", agreement="", n_votes="",
         note="", fractions="") -> dict:
    galaxy_id, _, external_id, schema, key, name, *_ = values
    return {"galaxy_id": galaxy_id, "external_id": external_id, "schema": schema, "kind": kind, "label": key,
            "label_name": name, "source": source, "who": who, "when": when, "rule": rule, "agreement": agreement,
            "n_votes": n_votes, "note": note, "fractions": fractions}


def _expert(values: tuple) -> dict:
    provenance, who, when, note = values[6:]
    return _row(values, "expert", provenance, who or "", when.isoformat(), note=note)


def _consensus(values: tuple) -> dict:
    rule, tree, agreement, n_votes, when, fractions = values[6:]
    # Which vote fractions decided (debiased, weighted, raw): a debiased class and a raw one are different claims.
    return _row(values, "consensus", f"volunteers ({tree})", "", when.isoformat(), rule, round(agreement, 4), n_votes,
                fractions=fractions)


def _resolution(values: tuple) -> dict:
    who, when, note = values[6:]
    return _row(values, "resolution", "admin resolution", who, when.isoformat(), note=note)


def _final(given: dict[int, list[dict]], uncertain) -> dict | None:
    """The final row of one galaxy and schema from its other rows, or None when it has no label."""
    if RESOLUTION in given:
        return {**given[RESOLUTION][0], "kind": "final", "rule": "admin resolution"}
    if EXPERT in given:
        labels = given[EXPERT]
        key = majority_class(row["label"] for row in labels)
        agreeing = [row for row in labels if row["label"] == key]
        latest = agreeing[-1]
        # An imported label has no expert: its provenance ("imported from labels.csv") says who gave it.
        who = ", ".join(dict.fromkeys(row["who"] or row["source"] for row in agreeing))
        return {**latest, "kind": "final", "source": "experts", "who": who, "rule": EXPERT_RULE,
                "agreement": round(len(agreeing) / len(labels), 4), "n_votes": len(labels), "fractions": ""}
    consensus = given[CONSENSUS][0]
    return None if consensus["label"] in uncertain else {**consensus, "kind": "final"}
