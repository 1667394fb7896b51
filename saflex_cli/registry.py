"""Name -> factory registries: adding a dataset, augmenter, backbone, family or refinement method is one entry."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import SaflexError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise SaflexError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


AUGMENTERS: Registry = Registry("augmenter")
BACKBONES: Registry = Registry("backbone")
DATASETS: Registry = Registry("dataset")
FAMILIES: Registry = Registry("family")
REFINERS: Registry = Registry("refinement method")
