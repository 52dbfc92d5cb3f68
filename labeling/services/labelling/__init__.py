"""Labelling: the experts' side. Queues built from the query strategies, labels given, skipped, undone and resolved,
with history kept."""
