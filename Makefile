# The README's two commands. Both create .venv on first use and install everything they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Parallel pytest is not worth it on 2 cores with TensorFlow; keep one process.
PYTEST_ARGS ?=

.PHONY: setup test app models bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

app: $(STAMP)
	$(PY) -m streamlit run apps/streamlit_app.py --server.address 127.0.0.1 --server.port 8501 --server.headless true

clean:
	rm -rf $(VENV) .pytest_cache
