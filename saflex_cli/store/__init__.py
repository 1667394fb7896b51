"""What runs leave on disk: atomic file writes and locks (files) and the run records (records).

Beneath data/ (which writes through it) and training; may import only the floor (config, errors).
"""
