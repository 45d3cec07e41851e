# The README's commands. Each target bootstraps its own virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch; GPU users: see "GPU" in the README.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The bot: the local sandbox chat when TELEGRAM_BOT_TOKEN is unset, the real bot when it is set.
run: $(VENV)/.installed
	$(PY) -m bot run

demo: $(VENV)/.installed
	$(PY) -m charrnn demo

test: $(VENV)/.installed lint
	$(PY) -m pytest -q

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
