"""What runs leave on disk: atomic file writes and locks (files) and the run records (records).

Beneath data/, which writes through it; may import only the floor (config, settings, registry, errors).
"""
