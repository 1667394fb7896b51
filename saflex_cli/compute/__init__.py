"""Where tensors run: the device, precision, seeds and determinism (runtime), and DDP ranks (distributed).

Beneath the method, which reduces over ranks; may import only the floor (errors, config, registry).
"""
