# saflex: `make test` and `make demo` set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Seeds: a comma list, ranges included (SEEDS=0-9, SEEDS=0-4,10).
SEEDS ?= 0,1,2
# One data root for every family: $(DATA)/medmnist/, $(DATA)/tabular/, $(DATA)/iwildcam_v2.0/, ... (README).
DATA ?= data
OUT ?= results
# `make reproduce-all DRY_RUN=1`: list every run, which are recorded, and the device-hours left
# (THROUGHPUT=saflex_cli/resources/benchmarks/overhead-cuda.json prices them on the GPU measured there).
GRID_FLAGS := --seeds $(SEEDS) --out $(OUT) $(if $(DRY_RUN),--dry-run,) $(if $(THROUGHPUT),--throughput $(THROUGHPUT),)
BENCH_DEVICE ?= $(shell $(BIN)/python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')" 2>/dev/null)

.PHONY: test demo reproduce-all reproduce-medmnist reproduce-tabular reproduce-flyp reproduce-diffusion \
        report bench bench-cpu calibrate pi-modes clean-venv

$(BIN)/saflex: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

test: $(BIN)/saflex
	SAFLEX_OFFLINE=1 $(BIN)/python -m pytest -q

demo: $(BIN)/saflex
	$(BIN)/saflex demo

# The paper's tables; runs already recorded under $(OUT)/runs are skipped, so a killed grid resumes.
# FLYP and the diffusion family need data and weights on disk (README): without them they stop
# with a message naming what to place where; `make -k reproduce-all` then goes on with the rest.
reproduce-all: reproduce-medmnist reproduce-tabular reproduce-flyp reproduce-diffusion
	$(if $(DRY_RUN),,$(BIN)/saflex report --out $(OUT))

reproduce-medmnist: $(BIN)/saflex
	$(BIN)/saflex medmnist --dataset all --aug all --data-root $(DATA) $(GRID_FLAGS)

reproduce-tabular: $(BIN)/saflex
	$(BIN)/saflex tabular --model all --dataset all --aug all --data-root $(DATA) $(GRID_FLAGS)

reproduce-flyp: $(BIN)/saflex
	$(BIN)/saflex flyp --method all --aug all --data-root $(DATA) \
	  --pretrained $(DATA)/clip/open_clip_pytorch_model.bin $(GRID_FLAGS)

reproduce-diffusion: $(BIN)/saflex
	$(if $(wildcard $(DATA)/pools/*/Cub2011 $(DATA)/pools/*/iWildCamMini),,\
	  @echo "no generated pool under $(DATA)/pools/<method>/{Cub2011,iWildCamMini}: make one with saflex generate (README)" && exit 1)
	for p in $(wildcard $(DATA)/pools/*/Cub2011); do \
	  $(BIN)/saflex diffusion --dataset cub --aug all --pool $$p --data-root $(DATA) $(GRID_FLAGS) || exit 1; done
	for p in $(wildcard $(DATA)/pools/*/iWildCamMini); do \
	  $(BIN)/saflex diffusion --dataset iwildcam --aug all --pool $$p --data-root $(DATA) $(GRID_FLAGS) || exit 1; done

report: $(BIN)/saflex
	$(BIN)/saflex report --out $(OUT)

bench: $(BIN)/saflex  ## SAflex step overhead for every backbone; JSON in saflex_cli/resources/benchmarks/overhead-<device>.json
	$(BIN)/python benchmarks/overhead.py --device $(BENCH_DEVICE)

bench-cpu: $(BIN)/saflex  ## the small CPU run committed in saflex_cli/resources/benchmarks/overhead-cpu.json
	$(BIN)/python benchmarks/overhead.py --device cpu --steps 3 --warmup 1

calibrate: $(BIN)/saflex  ## this machine's plain steps (~40 s CPU) -> ~/.cache/saflex/benchmarks/, which --dry-run prefers
	$(BIN)/python benchmarks/overhead.py --device $(BENCH_DEVICE) --quick

pi-modes: $(BIN)/saflex  ## accuracy against cost of the Pi modes on the offline demo -> results/pi-modes.md
	$(BIN)/python benchmarks/pi_modes.py

clean-venv:
	rm -rf $(VENV)
