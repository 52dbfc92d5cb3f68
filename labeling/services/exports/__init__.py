"""Exports: a dataset's labels with provenance, vote summaries (in the Galaxy Zoo layout they came in), clusters and
predictions in, CSV or JSON Lines streamed out."""
