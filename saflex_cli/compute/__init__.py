"""Where tensors run: the device, precision, seeds and determinism (runtime), and DDP ranks (distributed).

Beneath the method, which reduces over ranks; may import data/, store/ and the floor, never models/ or augment/.
"""
