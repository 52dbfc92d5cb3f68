"""Which class a galaxy has when several experts labelled it: the rule galaxy_labels (what clusterings, maps and
training read) and the final label of the exports share, so that both always agree."""

from collections import Counter
from collections.abc import Iterable


def majority_class(keys: Iterable[str]) -> str:
    """The class most experts gave; between classes given equally often, the one labelled last.

    Args:
        keys: the class key of each current expert label of one galaxy and schema, oldest first (by created_at,
            then id).

    Raises:
        ValueError: when there is no label.
    """
    counts: Counter = Counter()
    latest: dict[str, int] = {}
    for order, key in enumerate(keys):
        counts[key] += 1
        latest[key] = order
    if not counts:
        raise ValueError("no expert label to take a majority of")
    return max(counts, key=lambda key: (counts[key], latest[key]))
