"""What the import commands share: progress bars while an import runs, and one error listing every problem when it
fails (nothing was imported then: imports are transactional)."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandError

from labeling.management.progress import PhaseBars
from labeling.services.imports.reports import ImportFailed


@contextmanager
def import_progress(unit: str, stream) -> Iterator[PhaseBars]:
    """Bars counting ``unit`` on ``stream`` (a command's ``self.stderr``); ImportFailed becomes a CommandError whose
    lines are the problems, each naming its file, row or field, then how many."""
    try:
        with PhaseBars(unit=unit, stream=stream) as bars:
            yield bars
    except ImportFailed as exc:
        lines = [*exc.problems, f"{len(exc.problems)} problem(s), nothing was imported"]
        raise CommandError("\n".join(lines)) from None
