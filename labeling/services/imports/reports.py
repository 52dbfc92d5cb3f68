"""What every importer reports, and the error it raises when input is bad.

Importers validate everything before they write anything. With bad input they raise ImportFailed listing every
problem, each naming the file, row and column at fault, and nothing is written. With skip_bad they import the good
rows and list the skipped ones in the report.
"""

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection

from labeling.models import Dataset

# progress(done, total, message): called by importers as they go, so commands can draw a progress bar.
Progress = Callable[[int, int, str], None]


def no_progress(done: int, total: int, message: str = "") -> None:
    return None


# The PostgreSQL advisory lock every import's write transaction holds (any 64-bit number no other lock uses).
IMPORT_LOCK = zlib.crc32(b"labeling: imports write one at a time")


def imports_take_turns() -> None:
    """Wait until no other import is writing, and keep the others waiting until this transaction ends. Call it
    first in an import's write transaction.

    Two imports of the same file at once would both find a galaxy missing and both insert it, and the second would
    die on the unique constraint with a traceback. In turn, the second sees what the first committed (each query
    under READ COMMITTED does) and reports it unchanged. Imports are rare and run by admins: one at a time
    across datasets also covers the schemas and trees they share.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK])
        elif connection.vendor == "sqlite":
            # SQLite has one write lock, taken at a transaction's first write; a transaction that has read before
            # is then refused at once ("database is locked") rather than made to wait. A write that changes
            # nothing takes it now: a second import waits for the first (up to the connection's timeout), and
            # never reads the files of one in progress as orphans (import_galaxies._orphans_remove).
            cursor.execute(f"UPDATE {connection.ops.quote_name(Dataset._meta.db_table)} SET id = id WHERE 1 = 0")


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
