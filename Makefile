# Two commands do all set-up on a fresh Linux or macOS machine:
#   make serve   create .venv, build tiny demo models if no model is given, serve on 127.0.0.1:8000
#   make test    create .venv and run the whole test suite
# Pass server flags with ARGS, e.g.  make serve ARGS="--vision-model ~/models/qwen2.5-vl-3b"

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# macOS gets the Metal build through plain mlx; Linux takes the CPU extra (use EXTRA=cuda,test for CUDA).
EXTRA  ?= $(if $(filter Darwin,$(shell uname -s)),test,cpu,test)

.PHONY: serve test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("mmserve needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRA)]"
	touch $@

serve: $(VENV)/.installed
	$(BIN)/mmserve serve --demo $(ARGS)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV)
