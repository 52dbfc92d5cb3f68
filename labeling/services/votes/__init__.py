"""Votes: decision trees, label schemas and volunteers' classifications in; vote summaries, volunteer weights and
consensus classes written (mlcore.votes does the arithmetic)."""
