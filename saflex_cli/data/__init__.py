"""Datasets: on-device batches, downloads with checksums, the file catalogue, each family's data, generated pools.

May import store/ and the floor (config, settings, registry, errors); never models, the method or above.
"""
