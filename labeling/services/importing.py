"""What every importer reports, and the error it raises when input is bad.

Importers validate everything before they write anything. With bad input they raise ImportFailed listing every
problem, each naming the file, row and column at fault, and nothing is written. With skip_bad they import the good
rows and list the skipped ones in the report.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

# progress(done, total, message): called by importers as they go, so commands can draw a progress bar.
Progress = Callable[[int, int, str], None]


def no_progress(done: int, total: int, message: str = "") -> None:
    return None


class ImportFailed(Exception):
    """Bad input: nothing was written. ``problems`` holds one line per fault, naming file, row and column."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        text = "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")
        super().__init__(f"{len(self.problems)} problem(s), nothing was imported:\n{text}")


@dataclass
class ImportReport:
    """Counts of what an import did. ``skipped`` lists the bad rows left out under skip_bad."""

    dataset: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    labels_created: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.created} created", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.labels_created:
            parts.append(f"{self.labels_created} expert labels")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return f"dataset {self.dataset!r}: " + ", ".join(parts)
