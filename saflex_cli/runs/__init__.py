"""Running grids: the runs of a command, claims across workers, executors, data checksums, estimates, `saflex eval`.

May import families, training and everything beneath them; never reporting or the CLI.
"""
