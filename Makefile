# Two entry points (see README): `make run` and `make test`. Both set up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
QUESTION ?= What does Cheong Seong-chang expect Kim Jong Un to gain?

.PHONY: run test test-fast lint bench clean

$(BIN)/kabar: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: unpinned, pip would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/kabar
	$(BIN)/kabar index seeds/
	$(BIN)/kabar ask "$(QUESTION)"

test: $(BIN)/kabar
	$(BIN)/ruff check bot index prompts tests bench train
	$(BIN)/mypy
	$(BIN)/pytest

# The fast tier alone: no model (fake embedder, fake LLM), real Chroma and SQLite, nothing slow.
test-fast: $(BIN)/kabar
	$(BIN)/pytest -m "not integration and not slow"

bench: $(BIN)/kabar
	$(BIN)/python bench/index_bench.py

clean:
	rm -rf $(VENV) build *.egg-info
