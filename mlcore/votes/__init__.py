"""Votes: volunteers' walks through a decision tree in, counts, fractions, consensus classes, volunteer weights and
inter-rater agreement out (plus simulated volunteers for demos and tests)."""
