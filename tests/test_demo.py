"""SAflex must help where the upstream augmenter lies: the demo's mechanism, over seeds."""
from __future__ import annotations

import numpy as np

from saflex_cli.demo import run_demo


def test_label_shifting_augmentation_hurts_saflex_clearly_less(tmp_path):
    summary = run_demo([0, 1, 2], tmp_path, quiet=True)
    no_aug = np.mean(summary["No Aug"]["acc"])
    upstream = np.mean(summary["Upstream only"]["acc"])
    saflex = np.mean(summary["SAflex"]["acc"])
    assert no_aug - upstream > 4.0, "the corrupted augmentation must hurt upstream-only training"
    assert saflex - upstream > 3.0, "SAflex must recover clearly more than the seeds' spread"
    assert (no_aug - saflex) < 0.5 * (no_aug - upstream)
    # SAflex keeps fewer corrupted than clean augmented samples, and relabels some of them correctly.
    assert np.mean(summary["SAflex"]["corrupted_kept"]) < np.mean(summary["SAflex"]["clean_kept"])
    assert np.mean(summary["SAflex"]["recovery"]) > 10.0
