"""A grid worker for the fault tests: `python tests/grid_worker.py OUT SPEC_JSON`.

SPEC_JSON: {"runs": [{"epochs": 3, "seed": 0, "saflex": true, "aug": "label-shift"}, ...],
"options": {GridOptions fields}}. A child process, so that a test can SIGKILL it anywhere.
"""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from reliability_helpers import demo_config  # noqa: E402
from saflex_cli.runs.grid import GridOptions, run_grid  # noqa: E402


def configs(spec: dict):
    return [demo_config(**run) for run in spec["runs"]]


if __name__ == "__main__":
    spec = json.loads(sys.argv[2])
    if "barrier" in spec:  # start together with the other workers, to race for the same claims
        barrier = Path(spec["barrier"])
        (barrier.parent / f"ready-{os.getpid()}").touch()
        while not barrier.exists():
            time.sleep(0.01)
    outcome = run_grid(configs(spec), Path(sys.argv[1]), device="cpu", quiet=True,
                       options=GridOptions(**spec.get("options", {})))
    print(json.dumps({"ran": len(outcome.ran), "failed": len(outcome.failed), "busy": len(outcome.busy)}))
