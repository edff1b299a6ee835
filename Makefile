# Quick start: `make demo` then `make test`. Everything runs inside .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The CPU demo: the real pipeline, run as a DVC experiment with a smaller setting that
# fits about 10 minutes on 2 cores. `git checkout params.yaml` (or `dvc exp apply`)
# returns to the product defaults (FPN/ResNet-152, 768x768, imagenet weights).
DEMO_EXPERIMENT := demo-cpu
DEMO_PARAMS := -S model.arch=Unet -S model.encoder=resnet18 -S model.encoder_weights=null \
	-S preprocess.size=256 -S preprocess.filter.method=perona_malik \
	-S train.epochs=40 -S train.batch_size=4 -S train.lr=0.001 -S train.patch.size=128 -S train.keep=best \
	-S data.frames_manifest=data/trus_sample_frames.csv

.PHONY: setup browser sample demo test test-fast app serve clean-demo

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -c "import torch, segmentation_models_pytorch, onnxruntime, PySide6, dvc, pipeline"
	touch $(STAMP)

setup: $(STAMP)

# The gallery's browser test drives Debian's Chromium (Playwright's own browser download is not used).
# Installed here when missing, as root; otherwise it says what to install.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "browser: installing Debian's chromium for the gallery's browser test"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
	  else echo "browser: chromium is missing; install it (sudo apt-get install chromium) for tests/test_gallery_browser.py" >&2; exit 1; fi; \
	fi

# Writes the embedded SYNTHETIC sample export into data/ unless data/ already holds an export.
sample: setup
	@if [ -z "$$(ls -A data 2>/dev/null)" ]; then $(BIN)/trus sample --out data --seed 0; \
	else echo "sample: data/ is not empty; keeping it"; fi
	$(BIN)/dvc add -q data

demo: sample
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc exp run --force -n $(DEMO_EXPERIMENT) $(DEMO_PARAMS)
	@$(BIN)/python -m pipeline.cli.demo_summary

# Everything, the slow tier included (the demo training, the clinician's install): what CI runs.
test: setup browser
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# Everything but the tests marked slow; every stage still runs, through the real `dvc repro`.
test-fast: setup browser
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not slow"

app: setup
	$(BIN)/python -m app --model models/model.onnx

# The segmentation service and its gallery on http://127.0.0.1:8000/ (set TRUS_API_TOKEN before binding elsewhere).
serve: setup
	$(BIN)/trus serve --model models/model.onnx
