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


class PassOrder:
    """The order of one pass over a dataset, drawn from a private generator, and how far the
    pass has got: what a checkpoint needs to resume mid-epoch with the same batches.

    The generator state saved mid-pass is the one from before the pass's permutation, so a
    resumed pass draws the same permutation again and skips the batches already consumed.
    """

    def __init__(self, seed: int, shuffle: bool):
        self.generator = torch.Generator().manual_seed(seed)
        self.shuffle = shuffle
        self.pass_start: torch.Tensor | None = None  # generator state before this pass's draw
        self.position = 0  # batches handed out in this pass
        self.skip = 0  # batches to skip at the start of the next pass (set by a resume)

    def start(self, count: int) -> tuple[Tensor, int]:
        self.pass_start = self.generator.get_state()
        order = torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)
        self.position, self.skip = self.skip, 0
        return order, self.position

    def advance(self) -> None:
        self.position += 1

    def finish(self) -> None:
        self.pass_start, self.position = None, 0

    def state_dict(self) -> dict:
        if self.pass_start is not None:
            return {"generator": self.pass_start, "position": self.position}
        return {"generator": self.generator.get_state(), "position": 0}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.pass_start, self.position, self.skip = None, 0, int(state.get("position", 0))


class TensorBatches:
    """Shuffled minibatches of tensors resident on one device.

    A trailing batch of one sample is dropped in training: BatchNorm cannot normalise it.
    """

    def __init__(self, inputs, targets: Tensor, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, min_batch: int = 2):
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.min_batch = batch_size, min_batch
        self.order = PassOrder(seed, shuffle)
        self.count = input_count(inputs)

    def __len__(self) -> int:
        full, rest = divmod(self.count, self.batch_size)
        return full + (1 if rest >= self.min_batch else 0)

    def __iter__(self):
        order, skip = self.order.start(self.count)
        order = order.to(self.targets.device)
        for start in range(skip * self.batch_size, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            self.order.advance()
            yield index_inputs(self.inputs, index), self.targets[index]
        self.order.finish()

    def state_dict(self) -> dict:
        return self.order.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.order.load_state_dict(state)


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
        self.num_workers, self.min_batch = num_workers, min_batch
        self.order = PassOrder(seed, shuffle)

    def __len__(self) -> int:
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest >= self.min_batch else 0)

    def __iter__(self):
        order, skip = self.order.start(len(self.dataset))
        batches = [order[s:s + self.batch_size].tolist()
                   for s in range(skip * self.batch_size, len(self) * self.batch_size, self.batch_size)]
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                                             pin_memory=self.device.type == "cuda",
                                             persistent_workers=False)
        for inputs, targets in loader:
            self.order.advance()
            yield to_device(inputs, self.device), targets.to(self.device, non_blocking=True)
        self.order.finish()

    def state_dict(self) -> dict:
        return self.order.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.order.load_state_dict(state)


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

    def state_dict(self) -> dict:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """The next batch is the one that followed the saved state (the pass is redrawn and skipped)."""
        self.batches.load_state_dict(state)
        self._iterator = None


class StepsPerEpoch:
    """`steps` batches per epoch from an endless stream, for recipes whose epoch is not one pass
    (FLYP: ceil(images / batch) steps over a caption table of one row per (image, template))."""

    def __init__(self, stream: CyclingBatches, steps: int):
        self.stream, self.steps = stream, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            yield next(self.stream)

    def state_dict(self) -> dict:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state)
