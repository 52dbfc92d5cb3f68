"""Neighbours: feature vectors in, the most similar galaxies out (FAISS exact, HNSW and IVF-PQ indexes, saved as one
file and checked on the way in)."""
