"""Running grids: the cross product of runs, claims across workers, executors, data checksums, estimates, re-evaluation.

May import families (through the registry), training and everything beneath; never reporting or the CLI.
"""
