"""Pure machine-learning and vote arithmetic for the galaxy labelling service, one package per stage of the loop:
features, neighbours, clusters, active, training and votes (each package's docstring says what it takes and gives),
and the weights the project ships (``weights``: the galaxy backbone and its model card).

Nothing in this package imports Django or the labeling app: it takes arrays, paths and plain settings.
"""
