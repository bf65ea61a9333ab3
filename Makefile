# scalpscope: `make analyze` runs the bundled models on the bundled samples; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA ?= ../shared/data
DEVICE ?= cpu
# make train writes here; copy over weights/ once its scores (evaluate) satisfy you
WEIGHTS ?= runs/weights

.PHONY: venv test analyze demo serve train train-hair bench browser clean help

help:
	@echo "make analyze   set up .venv and analyze samples/ into runs/samples (report.html)"
	@echo "make test      set up .venv and run the test suite"
	@echo "make demo      start the local web demo on http://127.0.0.1:7860"
	@echo "make train     retrain every stage from DATA=$(DATA) into WEIGHTS=$(WEIGHTS)"
	@echo "make train-hair retrain the opt-in hair meter (hair/recipe.sh) into runs/hair"
	@echo "make bench     speed benchmark (benchmarks/bench_analyze.py)"

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium drives the browser tests; without root or apt they skip with a reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ; } || \
	  echo "chromium not installed: browser tests will be skipped"

# pytest exits 5 when it collects nothing: this suite has tests, so that is a failure.
test: $(STAMP) browser
	@$(PY) -m pytest tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is missing" >&2; exit 1; fi; exit $$rc

# The ONNX export is made once per weights version (pipeline.py checks its sha256 link).
weights/onnx/onnx.json: $(STAMP) weights/gate.safetensors weights/detector.pt weights/segmenter.safetensors weights/classifier.safetensors
	$(PY) pipeline.py -q export onnx

analyze: $(STAMP) weights/onnx/onnx.json
	$(PY) pipeline.py analyze samples --out runs/samples --device $(DEVICE)
	@echo "report: runs/samples/report.html"

demo: $(STAMP)
	$(PY) pipeline.py demo

serve: $(STAMP)
	$(PY) pipeline.py serve

train: $(STAMP)
	$(PY) pipeline.py train all --data $(DATA) --out $(WEIGHTS) --device $(DEVICE)

# The hair meter's own recipe (synthetic scenes, self-training on scalp-data train, about 2 h on a CPU).
train-hair: $(STAMP)
	PY=$(PY) hair/recipe.sh $(DATA)/scalp-data runs/hair

bench: $(STAMP)
	$(PY) benchmarks/bench_analyze.py

clean:
	rm -rf runs .pytest_cache
