# Two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv on first use and install the package with the pinned
# versions in constraints.txt (Python 3.11; PyPI is the only network needed).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow test-all demo demo-clean clean

setup: $(STAMP)

$(STAMP): setup.py constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "token-dropping needs Python 3.11 (TensorFlow 2.20 and its pinned stack); found " + sys.version.split()[0] + ". Run: make PYTHON=/path/to/python3.11 ...")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,beam]'
	touch $(STAMP)

# The default suite: tiny shapes, a few minutes on 2 CPU cores.
test: $(STAMP)
	$(PY) -m pytest -m "not slow" tests

# The slower end-to-end checks kept out of the default run.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow tests

test-all: $(STAMP)
	$(PY) -m pytest tests

# Pretrains the CPU-sized token-dropping BERT on the embedded default corpus
# (built on first use, then cached), evaluating on full sequences. Rerunning
# continues from the last checkpoint; `make demo-clean` starts over.
DEMO_DIR ?= runs/demo
demo: $(STAMP)
	$(PY) tools/train.py --experiment=token_drop_bert_tiny \
		--mode=train_and_eval --model_dir=$(DEMO_DIR)

demo-clean:
	rm -rf $(DEMO_DIR)

clean:
	rm -rf $(VENV) build *.egg-info
