"""Learning: model versions, feature extraction, neighbour indexes, clusters and maps, the probability model, retrain
and pretraining cycles, activation, and the active-learning simulation (mlcore does the computing)."""
