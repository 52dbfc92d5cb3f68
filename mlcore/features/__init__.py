"""Features: galaxy images in (decoded, converted, augmented), feature vectors out (a ResNet backbone without its
classifier, batched extraction, the memory-mapped feature store)."""
