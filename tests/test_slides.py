"""Every chapter makes a lecture deck: enough slides, no solutions, nothing from a CDN.

The decks are built here without running the chapters (structure only, a second or so each);
`make slides` builds them with outputs.
"""

import sys
from pathlib import Path

import nbformat
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


# A slide that introduces a figure or a result table shows it: on the slide itself, or on the
# one right after it, with no code in between (code longer than a slide is tagged
# `slide-output-only`, or `slideshow: skip` when it makes nothing to show).
INTRODUCED = [  # (chapter, slide heading, a line of the cell whose output the slide introduces)
    ("04-shrinkage", "Do BLUPs predict better? A simulation", "mse = runs.pivot_table("),
    ("04-shrinkage", "Explore: how a BLUP is made", "draw_shrinkage(tau00, fit.sigma2, 32"),
    ("05-fixed-or-random", "A simulated example: staff of European Parliament members",
     "print(mep_fit.summary())"),
    ("08-cross-level-interactions", "How coding changes signs", "both.rename(index="),
    ("11-matrix-form", "The profile for a random intercept", "ax.plot(grid, curve"),
]


def _with_stand_in_outputs(notebook):
    """The chapter as if executed: every code cell prints one line (the deck drops code cells
    whose output it cannot show)."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="result\n")]
    return notebook


def _slides_of(cells):
    """The deck's cells shown on slides, one list per slide."""
    pages = []
    for cell in cells:
        kind = slides.slide_type(cell)
        if kind in ("notes", "skip"):
            continue
        if not pages or kind in ("slide", "subslide"):
            pages.append([])
        pages[-1].append(cell)
    return pages


def _shows_code(cell):
    return cell.cell_type == "code" and not (cell.metadata.get("transient") or {}).get("remove_source")


@pytest.mark.parametrize("stem, heading, line", INTRODUCED, ids=[f"{c[0][:2]}-{c[1][:20]}" for c in INTRODUCED])
def test_a_slide_shows_the_figure_or_table_it_introduces(stem, heading, line):
    deck = slides.prepare(_with_stand_in_outputs(read_chapter(ROOT / "book" / f"{stem}.md")))
    cells = [cell for page in _slides_of(deck.cells) for cell in page]
    pages = _slides_of(deck.cells)
    where = {id(cell): number for number, page in enumerate(pages) for cell in page}
    opening = [c for c in cells if c.cell_type == "markdown" and c.source.splitlines()[0].lstrip("#").strip() == heading]
    result = [c for c in cells if c.cell_type == "code" and line in c.source]
    assert len(opening) == 1 and result, f"{stem}: no slide {heading!r} or no cell with {line!r}"
    start, end = cells.index(opening[0]), cells.index(result[-1])
    assert where[id(result[-1])] - where[id(opening[0])] in (0, 1), (
        f"{stem}: the output of {line!r} is more than one slide after {heading!r}")
    between = [c.source.splitlines()[0] for c in cells[start + 1:end] if _shows_code(c)]
    assert not between, f"{stem}: code {between} comes between {heading!r} and what it introduces"
    assert not _shows_code(result[-1]) or len(result[-1].source.splitlines()) <= 6, (
        f"{stem}: the code of {line!r} is too long to stand next to its output on a slide")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_code_the_book_hides_is_not_on_a_slide(chapter):
    deck = slides.prepare(_with_stand_in_outputs(read_chapter(chapter)))
    hidden = slides.HIDE_INPUT_TAGS | slides.SLIDE_OUTPUT_ONLY_TAGS
    shown = [cell.source.splitlines()[0] for cell in deck.cells
             if _shows_code(cell) and hidden & set(cell.metadata.get("tags", []))]
    assert not shown, f"{chapter.name}: the slides show the code of {shown}, which the book hides"
    assert any(not _shows_code(c) and c.cell_type == "code" for c in deck.cells) or not any(
        hidden & set(c.metadata.get("tags", [])) for c in read_chapter(chapter).cells), (
        f"{chapter.name}: no figure of a hide-input cell reached the slides")
