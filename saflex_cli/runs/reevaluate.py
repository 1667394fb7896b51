"""A recorded run's kept weights, evaluated again: the model rebuilt from the record's config.

The proof that the weights beside a record are the ones that made its numbers, and the way to use
them: the family builds the run's model and evaluator from the config (its data checked against
the record's checksums), the weights load strictly, and the split's metrics are compared with the
record's at that selection.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..compute.runtime import deterministic_mode, on_device, pick_device, seed_everything
from ..config import RunConfig
from ..errors import SaflexError
from ..registry import FAMILIES
from ..store.records import read_record
from ..training.weights import load_weights
from .fingerprint import data_checksums

SPLITS = ("test", "val")
TOLERANCE = 1e-6  # same device and precision: the same numbers, up to float summation order


@dataclasses.dataclass(frozen=True)
class Reevaluation:
    selection: str
    split: str
    recorded: dict[str, float]
    now: dict[str, float]
    recorded_on: str
    device: str

    @property
    def differences(self) -> dict[str, float]:
        return {name: self.now[name] - value for name, value in self.recorded.items() if name in self.now}

    @property
    def matches(self) -> bool:
        return all(abs(d) <= TOLERANCE for d in self.differences.values())


def read_run(record_file: Path) -> tuple[dict, RunConfig]:
    record = read_record(record_file)
    if record is None or "config" not in record:
        raise SaflexError(f"{record_file} is not a run record (a JSON file under OUT/runs/<family>/)")
    if record.get("status") != "completed":
        raise SaflexError(f"{record_file.name} is a {record.get('status')!r} run: it kept no weights")
    try:
        return record, RunConfig.from_dict(record["config"])
    except (KeyError, TypeError, ValueError, SaflexError):
        raise SaflexError(f"{record_file.name} was written under another record schema; this version cannot "
                          f"rebuild its model") from None


def reevaluate(record_file: Path, split: str = "test", selection: str | None = None, data_root: Path | None = None,
               device: str | None = None) -> Reevaluation:
    if split not in SPLITS:
        raise SaflexError(f"--split {split!r} is not one of: {' | '.join(SPLITS)}")
    record_file = Path(record_file)
    record, config = read_run(record_file)
    if data_root is not None:  # where the files are now; their checksums still have to be the run's
        config = dataclasses.replace(config, data_root=str(data_root))
    selection = selection or FAMILIES.get(config.family).selection
    if selection not in record["selections"]:
        raise SaflexError(f"--selection {selection!r}: {record_file.name} has {', '.join(record['selections'])}")
    tensors = load_weights(record_file, record, selection)
    if config.data_checksums and data_checksums(config) != config.data_checksums:
        raise SaflexError(f"the data under {config.data_root} is not the run's (checksums {dict(data_checksums(config))}, "
                          f"recorded {dict(config.data_checksums)}): give --data-root where the run's files are")
    target = pick_device(device)
    with deterministic_mode(config.deterministic):
        seed_everything(config.seed)
        setup = FAMILIES.get(config.family).build(config, target)
        model = on_device(setup.model, target, config.memory_format)  # the layout the run trained in
        try:
            model.load_state_dict(tensors)
        except RuntimeError as error:
            raise SaflexError(f"the weights do not fit the model the record's config builds: "
                              f"{str(error).splitlines()[0]}") from None
        now = setup.evaluate(model)[split]
    recorded = record["selections"][selection].get(split, {})
    return Reevaluation(selection, split, recorded, now, record.get("device", "unknown"), str(target))
