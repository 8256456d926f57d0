"""tools/handouts.py prints a toy deck and a toy chapter page (skipped without Chromium)."""

import base64
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_browser  # noqa: E402  (tools/ is not a package)
import handouts  # noqa: E402

DECK = '''\
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

Say that the intraclass correlation is the share of variance between groups.

+++ {"slideshow": {"slide_type": "slide"}}

## Shrinkage

- Small groups move most.
- Large groups keep their mean.
'''
# A 4x4 red PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEklEQVR4nGP4z8CAB+GTG8HSALfKY52fTcuYAAAAAElFTkSuQmCC")


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    chromium = check_browser.find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed")
    pytest.importorskip("playwright")
    pytest.importorskip("pypdf")
    import slides

    root = tmp_path_factory.mktemp("site")
    html, decks, out = root / "html", root / "slides", root / "handouts"
    (html / "book").mkdir(parents=True)
    decks.mkdir()
    (html / "index.html").write_text("<!DOCTYPE html><title>book</title><p>book</p>")
    (html / "book" / "red.png").write_bytes(PNG)
    (html / "book" / "01-toy.html").write_text(
        "<!DOCTYPE html><title>toy</title><main><h1>Toy chapter</h1><p>Some text to print.</p>"
        '<img src="red.png" alt="a red square" width="200" height="200"></main>')
    chapter = root / "01-toy.md"
    chapter.write_text(DECK)
    deck = slides.build_deck(chapter, decks, run=False)
    slides.copy_assets(decks)
    (decks / "index.html").write_text(slides.index_page([deck]))
    plain = handouts.run(html, decks, out, chromium)
    with_notes = handouts.run(html, decks, out / "notes", chromium, notes=True)
    return deck, plain, with_notes


def test_a_deck_prints_one_page_per_slide(printed):
    deck, plain, _ = printed
    printed_deck = next(h for h in plain if h.source.endswith(".slides.html"))
    assert printed_deck.problems == []
    assert printed_deck.pages == deck.slides >= 3


def test_speaker_notes_add_a_page_per_slide(printed):
    deck, _, with_notes = printed
    printed_deck = next(h for h in with_notes if h.source.endswith(".slides.html"))
    assert printed_deck.pages == deck.slides + 1  # only the first slide has notes
    assert printed_deck.problems == []


def test_a_chapter_prints_with_its_figure(printed):
    _, plain, _ = printed
    page = next(h for h in plain if h.source == "01-toy.html")
    assert page.problems == [] and page.pages >= 1 and page.images >= 1


def test_a_blank_page_is_reported(tmp_path):
    pytest.importorskip("pypdf")
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    target = tmp_path / "blank.pdf"
    with target.open("wb") as handle:
        writer.write(handle)
    report = handouts.check(handouts.Handout("blank", target, expected_pages=2))
    assert "blank page(s): 1" in report.problems and "1 pages for 2 slides" in report.problems
