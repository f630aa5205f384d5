# One entry point. `make book` is the main job; `make test` runs the tests.
PROFILE ?= default
VENV ?= .venv
PY = $(VENV)/bin/python

.PHONY: install book run build test benchmarks lint clean

install:
	bash scripts/install.sh

## Execute every chapter and the benchmarks (regenerating tables/ under the default profile), build the HTML book.
## Chapters whose inputs are unchanged are reused from book/executed/ (sepcore.book_cache); FORCE=1 executes all.
## The profile's dataset is rendered first (once), so that the cache keys of the committed chapters can match.
book: install
	$(PY) -m sepcore.data.render --profile $(PROFILE)
	$(PY) -m sepcore.book run --profile $(PROFILE) $(if $(FORCE),--force)
	$(MAKE) benchmarks PROFILE=$(PROFILE)
	$(PY) -m sepcore.book build

run:
	$(PY) -m sepcore.book run --profile $(PROFILE) $(if $(FORCE),--force) $(CHAPTERS)

build:
	$(PY) -m sepcore.book build

test: install
	$(PY) -m pytest -q

benchmarks:
	$(PY) -m benchmarks.sdr_speed --profile $(PROFILE)
	$(PY) -m benchmarks.methods --profile $(PROFILE)
	$(PY) -m benchmarks.latent_bayes_speed --profile $(PROFILE)
	$(PY) -m benchmarks.lass_speed --profile $(PROFILE)
	$(PY) -m benchmarks.langevin_speed --profile $(PROFILE)
	$(PY) -m benchmarks.latent_variants_speed --profile $(PROFILE)

lint:
	$(VENV)/bin/ruff check sepcore tests benchmarks

clean:
	rm -rf _build book/executed
