"""Clusters: feature vectors in, cluster ids and 2-D map coordinates out (PCA, k-means, scalable spectral, t-SNE,
UMAP, LDA), with how well the clusters match known labels."""
