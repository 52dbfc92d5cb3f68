"""Jobs: background work created, queued, run with progress and cancellation, split into chunks for several workers,
and marked failed when its worker dies; the Jobs page reads what these write."""
