# bigtrain-lab: `make lab` and `make test` each bootstrap .venv from the pinned requirements.txt.
# A second run installs nothing: the stamp file is newer than requirements.txt and pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bigtrain-lab-installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: venv lab lab-headless test sweep lint

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned environment into $(VENV) (first run: a few minutes) ..."
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e .
	@touch $@

venv: $(STAMP)

## Start JupyterLab on the curriculum (opens a browser). LAB_ARGS="--port 9999" to change the port.
lab: $(STAMP)
	$(BIN)/bigtrain-lab lab $(LAB_ARGS)

## Same, headless (servers, SSH): prints the URL with its token and keeps serving.
lab-headless: $(STAMP)
	$(BIN)/bigtrain-lab lab --no-browser $(LAB_ARGS)

## The whole suite: unit tests, nbval over notebooks/, grader tests, browser test; PYTEST_WORKERS files at a
## time (pytest-xdist; 0 = serial). Three on two cores: the grader's and browser tests wait on kernels and
## servers much of the time. Extra arguments: PYTEST_ARGS="-k metrics".
PYTEST_WORKERS ?= 3
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## Every right answer in tests/wrong_answers over 200 seeds per exercise: zero rejections (~7 min on 2 cores).
sweep: $(STAMP)
	BIGTRAIN_LAB_SWEEP_SEEDS=200 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist load -q tests/test_grading_tolerance.py -k never_rejected

lint: $(STAMP)
	$(BIN)/ruff check .

## Rewrite environment.yml from requirements.txt (a test checks that they agree).
environment.yml: requirements.txt
	@{ echo "# conda env create -f environment.yml  (generated from requirements.txt by 'make environment.yml')"; \
	   echo "name: bigtrain-lab"; echo "channels:"; echo "  - conda-forge"; echo "dependencies:"; \
	   echo "  - python=3.11"; echo "  - pip"; echo "  - pip:"; \
	   grep -E '^[A-Za-z0-9]' requirements.txt | sed 's/^/      - /'; echo "      - -e ."; } > $@
