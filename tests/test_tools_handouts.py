"""tools/handouts.py prints a toy deck and a toy chapter page (skipped without Chromium).

The toy site (tests/conftest.py) has a slide taller than the frame, which the deck scales down.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import handouts  # noqa: E402  (tools/ is not a package)


@pytest.fixture(scope="module")
def printed(toy_site, tmp_path_factory):
    pytest.importorskip("pypdf")
    out = tmp_path_factory.mktemp("handouts")
    plain = handouts.run(toy_site.html, toy_site.decks, out, toy_site.chromium)
    with_notes = handouts.run(toy_site.html, toy_site.decks, out / "notes", toy_site.chromium, notes=True)
    return toy_site.deck, plain, with_notes


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


def test_a_slide_taller_than_the_frame_prints_on_one_page(printed):
    deck, plain, _ = printed
    printed_deck = next(h for h in plain if h.source.endswith(".slides.html"))
    assert not [p for p in printed_deck.problems if "taller than a printed page" in p]
    assert printed_deck.pages == deck.slides


def test_a_slide_that_is_not_fitted_is_named(toy_site, tmp_path):
    """Without the deck's scaling, the long listing would take two pages: the check says which slide."""
    page = toy_site.deck.path.read_text()
    assert "const MIN_FIT = 0.75;" in page
    unfitted = toy_site.decks / "02-unfitted.slides.html"
    unfitted.write_text(page.replace("const MIN_FIT = 0.75;", "const MIN_FIT = 1.0;"))
    try:
        [report] = handouts.run(toy_site.html, toy_site.decks, tmp_path, toy_site.chromium,
                                only=("02-unfitted",))
    finally:
        unfitted.unlink()
    slides = toy_site.deck.slides
    assert f"{slides + 1} pages for {slides} slides" in report.problems
    assert any(p.startswith(f"slide {slides} (A long listing) is taller than a printed page")
               and p.endswith("it prints on 2 pages") for p in report.problems), report.problems


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
