"""Which vote fractions a consensus rule reads: raw, weighted or debiased, with a fallback order. Pure Python.

Raw fractions are count / total. Weighted ones down-weight inconsistent volunteers (GZ2's iterative weights, or
ours from mlcore.votes.weighting). Debiased ones correct the drift towards "smooth" of small, faint and distant
galaxies (Bamford et al. 2009, Willett et al. 2013, Hart et al. 2016); catalogues publish them, and astronomers
select samples on them. A galaxy may lack the preferred kind for some questions (a catalogue without the column,
aggregated votes that were never weighted), so each question falls back along the rule's list, and raw fractions
are always the last resort.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RAW = "raw"
WEIGHTED = "weighted"
DEBIASED = "debiased"
KINDS = (RAW, WEIGHTED, DEBIASED)
# Where each kind lives in a summary's published columns (the GZ2 and GZ DECaLS column suffixes).
EXTRA_KEY = {WEIGHTED: "weighted_fraction", DEBIASED: "debiased"}


def check_kinds(kinds: Sequence[str] | str) -> tuple[str, ...]:
    """The fallback order as a tuple, from a list or one name.

    Raises:
        ValueError: for an empty list or an unknown kind, naming it.
    """
    order = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not order:
        raise ValueError(f"name at least one kind of fractions: {', '.join(KINDS)}")
    for kind in order:
        if kind not in KINDS:
            raise ValueError(f"unknown kind of fractions {kind!r}; use {', '.join(KINDS)}")
    return order


def pick_fractions(
    raw: Mapping[str, float], extra: Mapping, kinds: Sequence[str]
) -> tuple[Mapping[str, float], str]:
    """One question's fractions of the first kind in ``kinds`` that it has.

    A kind counts as missing when its column is absent or holds no value above zero while the raw fractions do:
    published tables write 0 where they computed nothing.

    Args:
        raw: answer key -> count / total.
        extra: the summary's other published columns, suffix -> answer key -> value.
        kinds: fallback order, e.g. ("debiased", "weighted"); raw ends every order.

    Returns:
        (answer key -> fraction, the kind used).
    """
    has_votes = any((value or 0.0) > 0 for value in raw.values())
    for kind in kinds:
        if kind == RAW:
            return raw, RAW
        values = extra.get(EXTRA_KEY[kind])
        if not isinstance(values, Mapping) or not values:
            continue
        cleaned = {answer: float(value) for answer, value in values.items() if value is not None}
        if has_votes and not any(value > 0 for value in cleaned.values()):
            continue
        return cleaned, kind
    return raw, RAW


def describe_used(used: Mapping[str, str], root: str) -> str:
    """The kinds that decided, the root question's first: 'debiased', or 'debiased, raw' when some question the
    rule read fell back to raw fractions."""
    main = used.get(root, RAW)
    return ", ".join([main] + sorted({kind for kind in used.values() if kind != main}))
