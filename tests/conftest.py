"""Shared fixtures: the two course data sets most tests use, and a toy site (a built deck and two book
pages) for the tests that open Chromium."""

import base64
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import mlmcourse

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hs():
    """hsb40: 1,977 students in 40 schools (a fresh copy per test module)."""
    return mlmcourse.load("hsb40")


@pytest.fixture(scope="module")
def sleep():
    """sleepstudy: 18 subjects on 10 days (a fresh copy per test module)."""
    return mlmcourse.load("sleepstudy")

# A code cell of this many lines is taller than the 1280x720 frame: the deck shows it scaled down.
LONG_CODE_LINES = 30

TOY_DECK = '''\
---
jupytext:
  text_representation: {extension: .md, format_name: myst, format_version: 0.13}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

# A toy deck

+++ {"slideshow": {"slide_type": "slide"}}

## Variance

The model is $y_{ij} = \\\\beta_0 + u_j + e_{ij}$.

+++ {"slideshow": {"slide_type": "notes"}}

SPEAKER_MARKER: the intraclass correlation is $\\\\rho = \\\\tau_{00} / (\\\\tau_{00} + \\\\sigma^2)$.

+++ {"slideshow": {"slide_type": "slide"}}

## Shrinkage

- Small groups move most.
- Large groups keep their mean.

+++ {"slideshow": {"slide_type": "slide"}}

## A long listing

```{code-cell} ipython3
''' + "\n".join(f"value_{i:02d} = {i} * 2  # a line of a long listing" for i in range(LONG_CODE_LINES)) + '''
```
'''

# A 4x4 red PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEklEQVR4nGP4z8CAB+GTG8HSALfKY52fTcuYAAAAAElFTkSuQmCC")


@dataclass
class ToySite:
    chromium: str
    html: Path  # the "built book": an index, an intro page and a chapter page with a figure
    decks: Path  # the built deck of TOY_DECK, its assets and the slides' index
    deck: object  # slides.Deck of the toy deck


def tools_on_path() -> None:
    if str(ROOT / "tools") not in sys.path:
        sys.path.insert(0, str(ROOT / "tools"))


def build_toy_site(root: Path, chromium: str) -> ToySite:
    tools_on_path()
    import slides

    html, decks = root / "html", root / "slides"
    (html / "book").mkdir(parents=True)
    decks.mkdir()
    (html / "index.html").write_text("<!DOCTYPE html><title>book</title><p>book</p>")
    (html / "book" / "intro.html").write_text("<!DOCTYPE html><title>intro</title><p>intro</p>")
    (html / "book" / "red.png").write_bytes(PNG)
    (html / "book" / "01-toy.html").write_text(
        "<!DOCTYPE html><title>toy</title><main><h1>Toy chapter</h1><p>Some text to print.</p>"
        '<img src="red.png" alt="a red square" width="200" height="200"></main>')
    chapter = root / "01-toy.md"
    chapter.write_text(TOY_DECK)
    deck = slides.build_deck(chapter, decks, run=False)
    slides.copy_assets(decks)
    (decks / "index.html").write_text(slides.index_page([deck]))
    return ToySite(chromium, html, decks, deck)


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> ToySite:
    """The toy site, built once per test module (skipped without Chromium or playwright)."""
    tools_on_path()
    import check_browser

    chromium = check_browser.find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed")
    pytest.importorskip("playwright")
    return build_toy_site(tmp_path_factory.mktemp("site"), chromium)
