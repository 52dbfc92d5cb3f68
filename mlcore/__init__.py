"""Pure machine-learning and vote arithmetic for the galaxy labelling service.

Nothing in this package imports Django or the labeling app: it takes arrays, paths and plain settings.
"""
