# saflex: `make test` and `make demo` set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SEEDS ?= 0,1,2
DATA ?= data
OUT ?= results

.PHONY: test demo reproduce-all report clean-venv

$(BIN)/saflex: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

test: $(BIN)/saflex
	SAFLEX_OFFLINE=1 $(BIN)/python -m pytest -q

demo: $(BIN)/saflex
	$(BIN)/saflex demo

# The whole grid of the paper's tables; runs already recorded under $(OUT)/runs are skipped.
reproduce-all: $(BIN)/saflex
	$(BIN)/saflex medmnist --dataset all --aug all --seeds $(SEEDS) --data-root $(DATA)/medmnist --out $(OUT)
	$(BIN)/saflex report --out $(OUT)

report: $(BIN)/saflex
	$(BIN)/saflex report --out $(OUT)

clean-venv:
	rm -rf $(VENV)
