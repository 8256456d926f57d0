# mlmcourse: `make book` builds the online book, `make test` runs every check.
# Both create the virtual environment .venv on first use (python3 only needed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NBVAL_DIR := _build/nbval

.PHONY: book test notebooks slides check-browser venv clean clean-all

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

test: $(STAMP)
	$(BIN)/python tools/coursenb.py plain --out $(NBVAL_DIR)
	$(BIN)/python -m pytest tests mlmcourse $(NBVAL_DIR) notebooks --doctest-modules --nbval-lax --nbval-current-env -n 2 --dist loadfile; \
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
