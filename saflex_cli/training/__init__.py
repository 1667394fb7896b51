"""Training one run: the trainer, its checkpoints, evaluation and metrics, progress logs and kept weights.

May import the method and everything beneath it; never families, runs, reporting or the CLI.
"""
