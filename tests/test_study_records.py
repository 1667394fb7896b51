"""The committed study records keep their identities under the current code, so that a grid
skips them as done. Tabular: the constant-column rule changes only the runs whose training split
has such a column (Arrhythmia's), which get a new identity; QSAR's, Shrutime's and Click's do not."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_tabular_data import SHARED

from saflex_cli.config import RunConfig
from saflex_cli.runs.fingerprint import with_data_checksums

RECORDS = Path(__file__).resolve().parents[1] / "results" / "study" / "runs" / "tabular"
FILES = ("biodeg.csv", "Churn_Modelling.csv", "Click_prediction_small.csv", "arrhythmia.mat")


@pytest.mark.skipif(not all((SHARED / name).is_file() for name in FILES),
                    reason=f"the real tabular files {', '.join(FILES)} are not all in ../shared/data")
def test_committed_tabular_records_keep_their_identity_where_no_column_is_constant_in_train(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFLEX_OFFLINE", "1")
    (tmp_path / "tabular").symlink_to(SHARED)  # the records' data root is another machine's: the checksums say what
    records = [json.loads(path.read_text()) for path in sorted(RECORDS.glob("*.json"))]
    configs = [dataclasses.replace(RunConfig.from_dict(r["config"]), data_root=str(tmp_path), data_checksums=())
               for r in records]
    settled = with_data_checksums(configs, fetch=False)
    datasets = {r["config"]["dataset"] for r in records}
    assert datasets == {"qsar", "shrutime", "click", "arrhythmia"}
    for record, config in zip(records, settled):
        recorded_rule = dict(record["config"]["options"]).get("constant_columns")
        if record["config"]["dataset"] == "arrhythmia" and recorded_rule is None:  # SAINT's floor: not new-rule runs
            assert config.option("constant_columns") == "unscaled" and config.identity() != record["run_id"]
        else:  # no constant column, or made under the rule it names
            assert config.option("constant_columns") == recorded_rule
            assert config.identity() == record["run_id"], record["run_name"]
