# The README's commands. Each target bootstraps its own virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch; GPU users: see "GPU" in docs/charrnn.md.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run demo test test-portable lint bench clean pretrained pretrained-sung pretrained-stage5 pretrained-tune forms topics

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
	@$(PY) -m pip install -qq --no-deps "tinysoundfont>=0.3.7,<0.4"  # see pyproject.toml: without PyAudio
	@touch $@

# The bot: the local sandbox chat when TELEGRAM_BOT_TOKEN is unset, the real bot when it is set.
run: $(VENV)/.installed
	$(PY) -m bot run $(ARGS)

demo: $(VENV)/.installed
	$(PY) -m charrnn demo

# Two pytest workers (pytest-xdist), whole files to each so that a file's fixtures are built once, one
# PyTorch thread each: on 2 cores the suite's waits on servers and subprocesses overlap with the other
# worker's training, and single-threaded tiny models lose nothing (two threads mostly spin on them).
TEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile
test: $(VENV)/.installed lint
	$(PYTEST)

# The charrnn tests on other CPU kernels: PyTorch's own vector code (ATEN_CPU_CAPABILITY) and the
# matmuls of oneDNN and MKL, capped at each instruction set, with 1 and 2 threads. A test that holds only
# on the kernels of the machine it was written on fails here. (A cap above what the CPU has is no-op.)
# Tests marked heavy (the base model over whole corpora: minutes without vector units) are left out.
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
	    env $$kernels OMP_NUM_THREADS=$$threads $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile \
	      -m "not heavy" tests/charrnn; \
	  done; \
	done

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/generate_speed.py
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/right_size.py
	$(PY) benchmarks/base_languages.py
	$(PY) benchmarks/lyric_quality.py
	$(PY) benchmarks/lyric_shape.py
	$(PY) benchmarks/free_lines.py
	$(PY) benchmarks/bot_load.py
	$(PY) benchmarks/melody.py

clean:
	rm -rf $(VENV) runs

# The shipped base model (charrnn/pretrained/base): the command that produced the committed files.
# One LSTM over the four public-domain corpora in ../shared/data (Book of Songs, Song ci, tiny
# Shakespeare, Yuan qu), each split into train and validation parts on its own; stopped by the clock.
# Three stages: BASE_MINUTES from random weights, then BASE2_MINUTES more from stage 1's fp16 export at a
# lower learning rate (a fresh cosine schedule), then BASE3_MINUTES with Shakespeare read three times per
# epoch (a quarter of the characters, it had learnt English the least). It needs an idle machine; the
# export halves the weights (fp16, about 14 MB). The corpora's English words (charrnn.text.words: the only
# words its English may spell) then go into stage 3's meta.json alone (training records them, but these
# weights were trained before it did), and stage 4, pretrained-sung (below), starts from that export.
# Stage 4 (weights-93392d30ad2e) is make pretrained-sung, run 2026-12-02; the shipped base is stage 5's export
# (make pretrained-stage5, run 2026-12-03).
DATA ?= ../shared/data
BASE_MINUTES ?= 95
BASE2_MINUTES ?= 100
BASE3_MINUTES ?= 75
pretrained: $(VENV)/.installed
	$(PY) -m charrnn train $(DATA)/shijing.txt $(DATA)/songci.txt $(DATA)/tinyshakespeare.txt $(DATA)/yuanqu.txt \
	  --out runs/base --cell lstm --layers 2 --embed 512 --hidden 512 --tie --dropout 0.2 --seq-len 128 --amp \
	  --batch-size 32 --lr 2e-3 --weight-decay 0.01 --warmup-steps 200 --epochs 100 --patience 0 \
	  --max-minutes $(BASE_MINUTES) --seed 0 --sample-every 1 --sample-prefix 春风 --sample-prefix "The " --resume
	$(PY) -m charrnn export runs/base/best runs/base-stage1 --half
	$(PY) -m charrnn train $(DATA)/shijing.txt $(DATA)/songci.txt $(DATA)/tinyshakespeare.txt $(DATA)/yuanqu.txt \
	  --out runs/base2 --init-from runs/base-stage1 --lr 1e-3 --weight-decay 0.01 --warmup-steps 100 \
	  --seq-len 128 --batch-size 32 --epochs 100 --patience 0 --max-minutes $(BASE2_MINUTES) --seed 1 \
	  --sample-every 1 --sample-prefix 春风 --sample-prefix "The " --resume
	$(PY) -m charrnn export runs/base2/best runs/base-stage2 --half
	$(PY) -m charrnn train $(DATA)/shijing.txt $(DATA)/songci.txt $(DATA)/tinyshakespeare.txt $(DATA)/yuanqu.txt \
	  --out runs/base3 --init-from runs/base-stage2 --repeat tinyshakespeare=3 --lr 1e-3 --weight-decay 0.01 \
	  --warmup-steps 100 --seq-len 128 --batch-size 32 --epochs 100 --patience 0 --max-minutes $(BASE3_MINUTES) \
	  --seed 2 --sample-every 1 --sample-prefix 春风 --sample-prefix "The " --resume
	$(PY) -m charrnn export runs/base3/best runs/base-stage3 --half
	$(PY) -m charrnn words runs/base-stage3 $(DATA)/shijing.txt $(DATA)/songci.txt $(DATA)/tinyshakespeare.txt \
	  $(DATA)/yuanqu.txt
	@$(MAKE) --no-print-directory pretrained-sung
	@$(MAKE) --no-print-directory pretrained-stage5

# Stage 4, runnable alone: the sung register. Stages 1-3 read the Yuan qu with its drama, so everyday
# prompts fell into "(旦)...(合)...(末唱)". This stage continues from the shipped base on corpora without
# it: the Yuan qu's sung verses (yuanqu-sung, charrnn/drama.py) and the other sung lyrics of the same npm
# package (the Huajian ji, the two Southern Tang rulers, Nalan Xingde), fetched into SUNG_DATA and checked
# against their SHA-256; the ci read more often (the small anthologies four times per epoch, the Song ci
# twice), Shakespeare twice to keep the English. BASE4_RUN and BASE4_OUT move the run and the export (a
# trial run: BASE4_MINUTES=0.2 BASE4_RUN=/tmp/base4 BASE4_OUT=/tmp/base4-export). It starts from stage 3's
# export with its words, runs/base-stage3: the base shipped before this stage (weights-1ba5e876df1e), which
# a copy of charrnn/pretrained/base from before stage 4's export restores when only stage 4 is run again.
SUNG_DATA ?= runs/data
BASE4_FROM ?= runs/base-stage3
BASE4_MINUTES ?= 60
BASE4_RUN ?= runs/base4
BASE4_OUT ?= charrnn/pretrained/base
BASE4_LR ?= 1e-3
BASE4_SEED ?= 3
pretrained-sung: $(VENV)/.installed
	$(PY) -m charrnn fetch yuanqu-sung --from $(DATA)/yuanqu.txt --dir $(SUNG_DATA)
	$(PY) -m charrnn fetch huajian nantang nalan --dir $(SUNG_DATA)
	$(PY) -m charrnn train $(DATA)/shijing.txt $(DATA)/songci.txt $(SUNG_DATA)/yuanqu-sung.txt \
	  $(SUNG_DATA)/huajian.txt $(SUNG_DATA)/nantang.txt $(SUNG_DATA)/nalan.txt $(DATA)/tinyshakespeare.txt \
	  --out $(BASE4_RUN) --init-from $(BASE4_FROM) --repeat songci=2 --repeat huajian=4 \
	  --repeat nantang=4 --repeat nalan=4 --repeat tinyshakespeare=2 --lr $(BASE4_LR) --weight-decay 0.01 \
	  --warmup-steps 100 --seq-len 128 --batch-size 32 --epochs 100 --patience 0 --max-minutes $(BASE4_MINUTES) \
	  --seed $(BASE4_SEED) --sample-every 1 --sample-prefix 我想你 --sample-prefix "I miss you" --resume
	$(PY) -m charrnn export $(BASE4_RUN)/best $(BASE4_OUT) --half

# Stage 5, runnable alone: stage 4 had ended its cosine schedule still improving (its own validation perplexity
# 35.9 after its first pass, 32.5 at the end), so BASE5_MINUTES more on the same sung mixture, a fresh schedule at
# half the peak rate (5e-4), one thread, another seed. It starts from stage 4's export, kept in runs/base-stage4:
# charrnn/pretrained/base as it was before this stage's export replaced it (weights-93392d30ad2e; a checkout of
# that commit's files restores it when only this stage is run again).
BASE5_MINUTES ?= 90
pretrained-stage5: $(VENV)/.installed
	test -d runs/base-stage4 || (mkdir -p runs && cp -r charrnn/pretrained/base runs/base-stage4)
	OMP_NUM_THREADS=1 $(MAKE) --no-print-directory pretrained-sung BASE4_FROM=runs/base-stage4 BASE4_RUN=runs/base5 \
	  BASE4_MINUTES=$(BASE5_MINUTES) BASE4_LR=5e-4 BASE4_SEED=5

# The shipped tune model (charrnn/pretrained/tune), which sets lyrics to melodies (charrnn.music): folk tunes in
# ABC from the installed music21 package, the collections free for any use (charrnn.music.corpus; the corpus's
# SHA-256 is printed), one LSTM 2x512 with a small embedding (a 49-character alphabet) over 256-character windows
# (a tune is 200), stopped by the clock, exported in half precision (about 6.6 MB). TUNE_MINUTES=0.2 for a trial.
# The shipped one is this target's export (weights-ac2b6c221417, corpus sha256 a76a9950...), run 2026-12-02:
# 23 epochs in 45 minutes beside other work, best held-out perplexity 2.867 at epoch 22.
TUNE_MINUTES ?= 45
TUNE_RUN ?= runs/tune
TUNE_OUT ?= charrnn/pretrained/tune
pretrained-tune: $(VENV)/.installed
	$(PY) -m charrnn fetch tunes --dir $(SUNG_DATA)
	$(PY) -m charrnn train $(SUNG_DATA)/tunes.txt --out $(TUNE_RUN) --cell lstm --layers 2 --embed 64 --hidden 512 \
	  --no-tie --dropout 0.2 --seq-len 256 --batch-size 32 --lr 3e-3 --weight-decay 0.01 --warmup-steps 100 \
	  --epochs 100 --patience 0 --max-minutes $(TUNE_MINUTES) --seed 0 --sample-every 0 --resume
	$(PY) -m charrnn export $(TUNE_RUN)/best $(TUNE_OUT) --half

# The keyword plan's table shipped in charrnn/text/topics.json: for the 3,000 most widespread two-character words of
# the base's Chinese corpora, sung text only (titles left out; the Yuan qu without its drama, whose role markers
# 正末, 末云 would otherwise be "related" to everything), the words that share their songs most (charrnn.text.topics).
# With it, charrnn/text/themes.json: the words whose Song ci lean to spring or autumn, joy or sorrow (charrnn.text.themes).
topics: $(VENV)/.installed
	$(PY) -m charrnn fetch yuanqu-sung --from $(DATA)/yuanqu.txt --dir $(SUNG_DATA)
	$(PY) -m charrnn topics build $(DATA)/songci.txt $(DATA)/shijing.txt $(SUNG_DATA)/yuanqu-sung.txt
	$(PY) -m charrnn topics themes $(DATA)/songci.txt

# The ci tune forms shipped in charrnn/text/ci_forms.json: each tune's prevailing pattern and rhyme positions, mined
# from the Song ci corpus (charrnn.form_mining; tests/charrnn/text/test_forms.py checks the file is what this makes).
forms: $(VENV)/.installed
	$(PY) -m charrnn forms build $(DATA)/songci.txt
