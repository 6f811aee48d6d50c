# Thin wrappers over the `webtext` CLI. Every target creates the virtualenv first.
#   make demo           every stage on the bundled offline sample
#   make test           the test suite
#   make crawl          harvest Reddit dumps -> URL table, then crawl it into WARC
#   make build-dataset  WARC -> extracted, filtered, deduplicated Parquet shards
#   make train          tokenizer -> token shards -> GPT-2 training
#   make sample         generate the bundled sample into sample/generated/ (done for you)
# Variables: OUT (work dir), DUMPS (dump paths/globs; default: the sample's), REPLAY (sample
# web to serve on 127.0.0.1; set REPLAY= for a real crawl), WARC, SHARDS, TOKENS, ARGS (extra
# CLI args, e.g. ARGS="--set crawl.download_timeout=10").

PYTHON ?= python3
VENV := .venv
WEBTEXT := $(VENV)/bin/webtext
OUT ?= out
SAMPLE := sample/generated
DUMPS ?= $(SAMPLE)/reddit/RS_sample.zst
REPLAY ?= $(SAMPLE)/web
WARC ?= $(OUT)/crawl
SHARDS ?= $(OUT)/dataset
TOKENS ?= $(OUT)/tokens
ARGS ?=
PIP_VERSION := 26.3

.PHONY: setup pywb sample demo test crawl harvest build-dataset train bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q pip==$(PIP_VERSION)  # older pips mis-resolve lxml[html-clean]
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# pywb (the archive tests' Wayback server) in a virtualenv of its own: its pins conflict with ours
# (constraints-pywb.txt says which). The tests run its `wayback`, `warcserver` and `wb-manager`.
$(VENV)-pywb/.installed: constraints-pywb.txt
	test -x $(VENV)-pywb/bin/python || $(PYTHON) -m venv $(VENV)-pywb
	$(VENV)-pywb/bin/pip install -q -c constraints-pywb.txt pywb==2.10.0
	touch $@

pywb: $(VENV)-pywb/.installed

# Idempotent: regenerates only when the build is missing or outdated (sample/bundled.py).
sample: setup
	$(VENV)/bin/python -m sample

demo: setup pywb
	$(WEBTEXT) demo --out $(OUT)/demo $(ARGS)

test: setup pywb
	$(VENV)/bin/python -m pytest -q -n 2 $(ARGS)

harvest: setup $(if $(findstring $(SAMPLE),$(DUMPS)),sample)
	$(WEBTEXT) harvest --dumps $(DUMPS) --out $(OUT)/urls $(ARGS)

crawl: harvest $(if $(findstring $(SAMPLE),$(REPLAY)),sample)
	$(WEBTEXT) crawl --urls $(OUT)/urls --out $(OUT)/crawl $(if $(REPLAY),--replay $(REPLAY)) $(ARGS)

build-dataset: setup
	$(WEBTEXT) build --warc $(WARC) --out $(SHARDS) $(ARGS)

train: setup
	$(WEBTEXT) tokenizer train --shards $(SHARDS) --out $(OUT)/tokenizer $(ARGS)
	$(WEBTEXT) tokenize --shards $(SHARDS) --tokenizer $(OUT)/tokenizer --out $(TOKENS) $(ARGS)
	$(WEBTEXT) train --tokens $(TOKENS) --out $(OUT)/run $(ARGS)

bench: setup
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[bench]'
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(OUT) $(SAMPLE)
