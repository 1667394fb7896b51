"""Training one run: the trainer, its checkpoints, evaluation and metrics, progress logs and kept weights.

May import the method, compute/, store/, data/, models/, augment/ and the floor; never families, runs or reporting.
"""
