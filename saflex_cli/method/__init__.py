"""The SAflex method (paper Sec. 3): Π, soft labels and weights, the refiners and the objectives.

May import models/ augment/ compute/ data/ store/ and the floor (config, registry, errors); never training or above.
"""
