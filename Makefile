# The README's commands. Each target bootstraps its own virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch; GPU users: see "GPU" in the README.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run demo test test-portable lint bench clean

# One line per step; pip itself speaks only on errors (-qq also hides warnings about this machine's
# own pip configuration, which are not the project's business).
$(VENV)/.installed: pyproject.toml
	@echo "[1/3] virtual environment in $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -qq --upgrade pip
	@echo "[2/3] PyTorch ($(TORCH_SPEC))"
	@$(PY) -m pip install -qq "$(TORCH_SPEC)"
	@echo "[3/3] lyricbot and its dependencies"
	@$(PY) -m pip install -qq -e '.[dev]'
	@touch $@

# The bot: the local sandbox chat when TELEGRAM_BOT_TOKEN is unset, the real bot when it is set.
run: $(VENV)/.installed
	$(PY) -m bot run

demo: $(VENV)/.installed
	$(PY) -m charrnn demo

test: $(VENV)/.installed lint
	$(PY) -m pytest -q

# The charrnn tests on other CPU kernels: PyTorch's own vector code (ATEN_CPU_CAPABILITY) and the
# matmuls of oneDNN and MKL, capped at each instruction set, with 1 and 2 threads. A test that holds only
# on the kernels of the machine it was written on fails here. (A cap above what the CPU has is no-op.)
PORTABLE_ISAS ?= default avx2 avx512
PORTABLE_THREADS ?= 1 2
test-portable: $(VENV)/.installed
	@set -e; for isa in $(PORTABLE_ISAS); do \
	  case $$isa in \
	    default) kernels="ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2";; \
	    avx2) kernels="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2";; \
	    avx512) kernels="ATEN_CPU_CAPABILITY=avx512 ONEDNN_MAX_CPU_ISA=ALL MKL_ENABLE_INSTRUCTIONS=AVX512";; \
	    *) echo "unknown instruction set $$isa (default, avx2, avx512)"; exit 2;; \
	  esac; \
	  for threads in $(PORTABLE_THREADS); do \
	    echo "== charrnn tests: $$kernels OMP_NUM_THREADS=$$threads"; \
	    env $$kernels OMP_NUM_THREADS=$$threads $(PY) -m pytest -q tests/charrnn; \
	  done; \
	done

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/generate_speed.py
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/bot_load.py

clean:
	rm -rf $(VENV) runs
