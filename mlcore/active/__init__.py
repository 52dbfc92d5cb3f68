"""Active learning: features, probabilities and volunteer votes in, the galaxies an expert should label next out (the
probability head, acquisition scores, batch and diversity selection, and the simulation that measures them)."""
