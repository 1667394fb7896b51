"""SAflex must help where the upstream augmenter lies: the demo's mechanism, over seeds."""
from __future__ import annotations

import numpy as np

from saflex_cli.reporting.demo import run_demo


def test_label_shifting_augmentation_hurts_saflex_clearly_less(tmp_path):
    summary = run_demo([0, 1, 2], tmp_path, quiet=True)
    no_aug = np.mean(summary["No Aug"]["acc"])
    upstream = np.mean(summary["Upstream only"]["acc"])
    saflex = np.mean(summary["SAflex (w/ upstream)"]["acc"])
    assert no_aug - upstream > 4.0, "the corrupted augmentation must hurt upstream-only training"
    assert saflex - upstream > 3.0, "SAflex must recover clearly more than the seeds' spread"
    assert (no_aug - saflex) < 0.5 * (no_aug - upstream)
    # SAflex keeps fewer corrupted than clean augmented samples, and relabels some of them correctly.
    saflex_rows = summary["SAflex (w/ upstream)"]
    assert np.mean(saflex_rows["corrupted_kept_fraction"]) < np.mean(saflex_rows["uncorrupted_kept_fraction"])
    assert np.mean(saflex_rows["label_recovery"]) > 10.0
