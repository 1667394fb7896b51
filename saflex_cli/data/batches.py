"""Batch sources that keep small datasets on the device (airbench's CifarLoader idea).

A batch source yields (inputs, targets) already on the training device; its order is drawn
from its own torch.Generator, so it depends on the seed alone and can be saved and resumed.
"""
from __future__ import annotations

import torch
from torch import Tensor


def index_inputs(inputs, index: Tensor):
    if isinstance(inputs, Tensor):
        return inputs[index]
    return type(inputs)(index_inputs(part, index) for part in inputs)


def input_count(inputs) -> int:
    return len(inputs) if isinstance(inputs, Tensor) else len(inputs[0])


class TensorBatches:
    """Shuffled minibatches of tensors resident on one device.

    A trailing batch of one sample is dropped in training: BatchNorm cannot normalise it.
    """

    def __init__(self, inputs, targets: Tensor, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, min_batch: int = 2):
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle, self.min_batch = batch_size, shuffle, min_batch
        self.generator = torch.Generator().manual_seed(seed)
        self.count = input_count(inputs)

    def __len__(self) -> int:
        full, rest = divmod(self.count, self.batch_size)
        return full + (1 if rest >= self.min_batch else 0)

    def __iter__(self):
        order = torch.randperm(self.count, generator=self.generator) if self.shuffle else torch.arange(self.count)
        order = order.to(self.targets.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            yield index_inputs(self.inputs, index), self.targets[index]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def to_device(inputs, device: torch.device):
    if isinstance(inputs, Tensor):
        return inputs.to(device, non_blocking=True)
    return type(inputs)(to_device(part, device) for part in inputs)


class LoaderBatches:
    """Minibatches of a map-style Dataset read from disk (images), moved to the device.

    The dataset returns (inputs, target) per index; the shuffling order is drawn from this
    object's own generator, so it depends on the seed alone, like TensorBatches.
    """

    def __init__(self, dataset, batch_size: int, device: torch.device, *, shuffle: bool = True, seed: int = 0,
                 num_workers: int = 0, min_batch: int = 2):
        self.dataset, self.batch_size, self.device = dataset, batch_size, device
        self.shuffle, self.num_workers, self.min_batch = shuffle, num_workers, min_batch
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest >= self.min_batch else 0)

    def __iter__(self):
        count = len(self.dataset)
        order = torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)
        batches = [order[s:s + self.batch_size].tolist() for s in range(0, len(self) * self.batch_size, self.batch_size)]
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                                             pin_memory=self.device.type == "cuda",
                                             persistent_workers=False)
        for inputs, targets in loader:
            yield to_device(inputs, self.device), targets.to(self.device, non_blocking=True)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def split_batches(split, batch_size: int, device: torch.device):
    """Fixed-order batches of a Split, whether it holds tensors or a Dataset read from disk."""
    if isinstance(split.inputs, torch.utils.data.Dataset):
        return LoaderBatches(split.inputs, batch_size, device, shuffle=False, min_batch=1)
    return TensorBatches(to_device(split.inputs, device), split.targets.to(device), batch_size,
                         shuffle=False, min_batch=1)


class CyclingBatches:
    """Endless validation batches for SAflex, in their own order, independent of training."""

    def __init__(self, batches):
        self.batches = batches
        self._iterator = None

    def __next__(self):
        if self._iterator is None:
            self._iterator = iter(self.batches)
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = iter(self.batches)
            return next(self._iterator)
