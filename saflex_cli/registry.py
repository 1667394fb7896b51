"""Name -> factory registries: adding a dataset, augmenter, backbone, family or refinement method is one entry.

A registry knows which modules register its entries and imports them on its first lookup, so
importing saflex (or building `saflex --help`) does not import torch and every model with it.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Callable, Generic, TypeVar

from .errors import SaflexError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, *modules: str):
        self.kind = kind
        self._modules = modules  # importing these registers the entries
        self._entries: dict[str, T] = {}
        self._prefixes: dict[str, Callable[[str], T]] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def register_prefix(self, prefix: str) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
        """A family of names, e.g. 'timm/<name>': `resolve(name)` returns the entry or raises SaflexError."""
        def add(resolve: Callable[[str], T]) -> Callable[[str], T]:
            self._prefixes[prefix] = resolve
            return resolve

        return add

    def _load(self) -> None:
        modules, self._modules = self._modules, ()  # cleared first: a registering module may look up
        for module in modules:
            importlib.import_module(module)

    def get(self, name: str) -> T:
        self._load()
        if name in self._entries:
            return self._entries[name]
        for prefix, resolve in self._prefixes.items():
            if name.startswith(prefix):
                return resolve(name[len(prefix):])
        choices = self.names() + [f"{prefix}<name>" for prefix in sorted(self._prefixes)]
        raise SaflexError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(choices)}")

    def create(self, name: str, **kwargs) -> T:
        """get(name)(**kwargs), with a keyword the factory does not take reported in one line."""
        factory = self.get(name)
        try:
            inspect.signature(factory).bind_partial(**kwargs)
        except TypeError as error:
            raise SaflexError(f"{self.kind} {name!r} does not take that setting ({error})") from None
        return factory(**kwargs)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


AUGMENTERS: Registry = Registry("augmenter", "saflex_cli.augment")
BACKBONES: Registry = Registry("backbone", "saflex_cli.models")
DATASETS: Registry = Registry("dataset", "saflex_cli.data.cub", "saflex_cli.data.iwildcam", "saflex_cli.data.tabular")
FAMILIES: Registry = Registry("family", "saflex_cli.families")
REFINERS: Registry = Registry("refinement method", "saflex_cli.method.refiners")
