"""Cells of vote catalogues: counts, fractions and other published numbers, read with problem lines that name the
column. A GZ2 table has four million cells, so groups of well-formed cells (nearly all of them) are converted in
bulk, and only a group with a bad or missing cell goes through the per-cell parsers that say what is wrong.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter

from labeling.services.imports.common import problem

MISSING = {"", "nan", "null", "none"}


def parse_number(text: str) -> int | float | None:
    """A published number kept as it came (an int stays an int); None for an empty or NaN cell.

    Raises:
        ValueError: not a number, or infinite.
    """
    if text.isdecimal():
        return int(text)
    try:
        number = float(text)
    except ValueError:
        if text.strip().lower() in MISSING:
            return None
        raise ValueError(f"{text!r} is not a number") from None
    if number != number:  # NaN: GZ DECaLS catalogues use it for "not asked"
        return None
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    if number.is_integer() and text.strip().lstrip("-").isdecimal():
        return int(text)
    return number


def parse_count(text: str) -> int | None:
    """A vote count: a whole, non-negative number ("12" or "12.0"); None for an empty or NaN cell.

    Raises:
        ValueError: not a number, negative, or not whole.
    """
    number = parse_number(text)
    if number is None:
        return None
    if number != int(number):
        raise ValueError(f"{text!r} is not a whole number of votes")
    if number < 0:
        raise ValueError(f"{text!r}: a vote count cannot be negative")
    return int(number)


def parse_fraction(text: str) -> float | None:
    """A fraction or probability in 0..1; None for an empty or NaN cell.

    Raises:
        ValueError: not a number, or outside 0..1.
    """
    number = parse_number(text)
    if number is not None and not 0 <= number <= 1:
        raise ValueError(f"{text!r} is outside 0..1")
    return None if number is None else float(number)


def metadata_value(text: str) -> int | float | str | None:
    """A catalogue cell for Galaxy.metadata: a number when it reads as one, else the text; None when empty."""
    try:
        return parse_number(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Group:
    """Cells read together: one value per answer of a question (its counts, or its debiased fractions...)."""

    keys: tuple[str, ...]
    indices: tuple[int, ...]
    get: Callable[[list[str]], tuple[str, ...]]

    @classmethod
    def of(cls, by_key: dict[str, int]) -> "Group":
        indices = tuple(by_key.values())
        getter = itemgetter(*indices)
        get = getter if len(indices) > 1 else (lambda fields: (getter(fields),))
        return cls(tuple(by_key), indices, get)


class Cells:
    """One data row's cells. Every unreadable cell adds a line to ``problems`` and reads as None."""

    def __init__(self, where: str, header: list[str], fields: list[str], problems: list[str]):
        self.where, self.header, self.fields, self.problems = where, header, fields, problems
        self.known: dict = {}  # (question, suffix) -> values, for the groups a Bulk reader has converted already

    def read(self, index: int, parse: Callable[[str], object]):
        try:
            return parse(self.fields[index])
        except ValueError as exc:
            self.fault(index, str(exc))
            return None

    def fault(self, index: int | None, message: str, *, column: str | None = None) -> None:
        self.problems.append(problem(self.where, column or self.header[index], message))

    def _slow(self, group: Group, parse: Callable[[str], object]) -> dict:
        return {key: self.read(index, parse) for key, index in zip(group.keys, group.indices, strict=True)}

    def counts(self, group: Group) -> dict[str, int | None]:
        values = _convert("count", group.get(self.fields))
        return self._slow(group, parse_count) if values is None else dict(zip(group.keys, values, strict=True))

    def numbers(self, group: Group) -> dict[str, int | float | None]:
        values = _convert("number", group.get(self.fields))
        return self._slow(group, parse_number) if values is None else dict(zip(group.keys, values, strict=True))

    def fractions(self, group: Group) -> dict[str, float | None]:
        values = _convert("fraction", group.get(self.fields))
        return self._slow(group, parse_fraction) if values is None else dict(zip(group.keys, values, strict=True))


def _convert(kind: str, texts: tuple[str, ...]) -> list | None:
    """Well-formed cells of one kind ("count", "fraction" or "number") converted at C speed; None when any cell is
    bad, missing or NaN, so that the caller reads them one by one."""
    if kind != "fraction" and all(map(str.isdecimal, texts)):
        return list(map(int, texts))
    if kind == "count":
        return None
    try:
        values = list(map(float, texts))
    except ValueError:
        return None
    if not math.isfinite(sum(values)):  # a NaN or an infinity somewhere
        return None
    if kind == "fraction":
        return values if min(values) >= 0 and max(values) <= 1 else None
    return [int(text) if text.isdecimal() else value for text, value in zip(texts, values, strict=True)]


class Bulk:
    """All the cells of one kind in a row (every count, or every fraction...), converted in one go.

    ``convert`` returns them all, or None when any cell is bad or missing: the caller then reads that row group by
    group, which names the faulty cells.
    """

    def __init__(self, groups: dict, kind: str):
        self.kind = kind
        self.slices = []
        indices: list[int] = []
        for name, group in groups.items():
            self.slices.append((name, group.keys, len(indices), len(indices) + len(group.indices)))
            indices.extend(group.indices)
        self.get = Group.of(dict(enumerate(indices))).get if indices else (lambda fields: ())

    def convert(self, fields: list[str]) -> list | None:
        return _convert(self.kind, self.get(fields))

    def split(self, values: list) -> dict:
        """Converted values per group name, each a {key: value} dict."""
        return {name: dict(zip(keys, values[start:end], strict=True)) for name, keys, start, end in self.slices}
