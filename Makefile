# mlmcourse: `make book` builds the online book, `make test` runs every check.
# Both create the virtual environment .venv on first use (python3 only needed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: book book-student test notebooks slides check-browser handouts dist venv clean clean-all

# Chapters that `make test` already ran are taken from _build/executed/ (tools/execute.py), not run again.
book: $(STAMP)
	$(BIN)/python tools/execute.py prime
	$(BIN)/jupyter-book build . -W -n --keep-going

# The book without the exercises' solutions, for courses that grade them: _build/student-edition/.
book-student: $(STAMP)
	$(BIN)/python tools/student_edition.py

# Each chapter is executed once (tests/test_chapters.py); its run is saved for the book and slides.
test: $(STAMP)
	$(BIN)/python -m pytest tests mlmcourse --doctest-modules -n 2 --dist load; \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests: treating as a failure"; fi; exit $$rc

notebooks: $(STAMP)
	$(BIN)/python tools/coursenb.py student

# One reveal.js deck per chapter in _build/slides (reveal.js and MathJax copied from PyPI packages).
slides: $(STAMP)
	$(BIN)/python tools/slides.py

# Opens the built book and slides in headless Chromium (Debian package chromium); run after
# `make book` and `make slides`. Screenshots go to _build/screenshots.
check-browser: $(STAMP)
	$(BIN)/python tools/check_browser.py

# PDF handouts: one per deck (a slide a page) and one per chapter, in _build/handouts.
# HANDOUT_FLAGS=--notes adds each slide's speaker notes on the next page.
handouts: book slides
	$(BIN)/python tools/handouts.py $(HANDOUT_FLAGS)

# A wheel (with the data sets and the self-check key inside) for a teacher to hand out, in dist/.
dist: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps --wheel-dir dist .

venv: $(STAMP)

# Re-install only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf _build

clean-all: clean
	rm -rf $(VENV)
