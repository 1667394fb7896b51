"""The SAflex method (paper Sec. 3): Π, soft labels and weights, the refiners and the objectives.

May import compute/, data/, models/, augment/ and the floor (config, registry, errors); never training or above.
"""
