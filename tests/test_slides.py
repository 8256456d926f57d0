"""Every chapter makes a lecture deck: enough slides, no solutions, nothing from a CDN.

The decks are built here without running the chapters (structure only, a second or so each);
`make slides` builds them with outputs.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import slides  # noqa: E402  (tools/ is not a package)
from coursenb import REMOVE_TAGS, read_chapter  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]-*.md"))


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Builds each chapter's deck once (structure only) for all tests of this module."""
    out_dir, decks = tmp_path_factory.mktemp("slides"), {}

    def deck(chapter):
        if chapter not in decks:
            decks[chapter] = slides.build_deck(chapter, out_dir, run=False)
        return decks[chapter]

    return deck


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_has_enough_slides(chapter, build):
    deck = build(chapter)
    assert deck.slides >= slides.MIN_SLIDES, (
        f"{chapter.name} makes only {deck.slides} slides (at least {slides.MIN_SLIDES}): mark the "
        "cells that start a slide with slideshow slide_type 'slide'")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_deck_names_no_public_host(chapter, build):
    deck = build(chapter)
    found = slides.cdn_references(deck.path.read_text())
    assert not found, f"{chapter.name}: the deck names a public host: {found[0]!r}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_deck_has_no_solution_or_book_only_cell(chapter):
    source = read_chapter(chapter)
    deck_sources = {cell.source for cell in slides.prepare(source).cells}
    hidden = [cell.source for cell in source.cells
              if REMOVE_TAGS & set(cell.metadata.get("tags", [])) and cell.source.strip()]
    assert not deck_sources & set(hidden), f"{chapter.name}: a remove-cell cell is on a slide"
    inside, solutions = False, []
    for cell in source.cells:
        if "{solution-start}" in cell.source:
            inside = True
        elif "{solution-end}" in cell.source:
            inside = False
        elif inside and cell.cell_type == "code" and cell.source.strip():
            solutions.append(cell.source)
    assert not deck_sources & set(solutions), f"{chapter.name}: a solution is on a slide"
