"""Print handouts: a PDF of every deck (one slide per page) and of every chapter of the book.

Uses the same headless Chromium as the browser check (Debian package ``chromium``, driven by
playwright): decks are printed in reveal.js's print layout (``?print-pdf``), one 1280x720 page per
slide, optionally with each slide's speaker notes on the page after it; chapters are printed from the built
book with its print style sheet on A4. A slide is printed as the audience sees it: the deck scales a
slide that is taller than the frame down (to 75% at least) before reveal.js cuts the pages. Every
PDF is checked: the page count (for a deck, the number of slides; a slide that still takes two
pages is named), no blank page, and as many pictures as the page shows.

Usage::

    python tools/handouts.py [--notes] [--out DIR] [--only NN-slug ...]

Run after ``make book`` and ``make slides`` (``make handouts`` does all three).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from check_browser import (BUILD, CHROMIUM_FLAGS, MATH_STATE_JS, MATHJAX_TIMEOUT_MS, Server,  # noqa: E402
                           find_chromium, open_for_print, print_overflow)

OUT_DIR = BUILD / "handouts"
NOTES_COUNT_JS = ("() => Reveal.getSlides().filter(s => { const n = s.querySelector('aside.notes');"
                  " return n && n.textContent.trim().length > 0; }).length")
IMAGES_JS = ("() => Array.from(document.querySelectorAll('main img, .reveal img'))"
             ".filter(i => i.naturalWidth > 0).length")


@dataclass
class Handout:
    source: str
    pdf: Path
    pages: int = 0
    expected_pages: int | None = None
    images: int = 0
    problems: list = field(default_factory=list)


def pdf_facts(pdf: Path) -> tuple[int, list[int], int]:
    """(pages, indices of blank pages, images drawn) of a PDF."""
    from pypdf import PdfReader

    reader = PdfReader(str(pdf))
    blank, images = [], 0
    for index, page in enumerate(reader.pages):
        text = (page.extract_text() or "").strip()
        count = len(page.images)
        images += count
        if not text and not count and not _has_drawing(page):
            blank.append(index)
    return len(reader.pages), blank, images


def _has_drawing(page) -> bool:
    """Vector content (formulas drawn as paths, SVG figures) counts as content."""
    contents = page.get_contents()
    data = contents.get_data() if contents is not None else b""
    return data.count(b" re") + data.count(b" l\n") + data.count(b" c\n") > 20


def check(handout: Handout) -> Handout:
    pages, blank, images = pdf_facts(handout.pdf)
    handout.pages, handout.images = pages, images
    if pages == 0:
        handout.problems.append("the PDF has no page")
    if handout.expected_pages is not None and pages != handout.expected_pages:
        handout.problems.append(f"{pages} pages for {handout.expected_pages} slides")
    if blank:
        handout.problems.append(f"blank page(s): {', '.join(str(i + 1) for i in blank)}")
    return handout


def print_deck(context, origin: str, deck: Path, out: Path, notes: bool) -> Handout:
    page = open_for_print(context, f"{origin}/slides/{deck.name}", notes)
    slides = page.evaluate("() => Reveal.getTotalSlides()")
    too_tall = print_overflow(page)
    with_notes = page.evaluate(NOTES_COUNT_JS) if notes else 0
    shown = page.evaluate(IMAGES_JS)
    target = out / deck.name.replace(".slides.html", ".slides.pdf")
    page.pdf(path=str(target), width="1280px", height="720px", print_background=True,
             margin={"top": "0", "bottom": "0", "left": "0", "right": "0"})
    page.close()
    handout = check(Handout(deck.name, target, expected_pages=slides + with_notes))
    handout.problems += too_tall
    if handout.images < shown:
        handout.problems.append(f"the PDF draws {handout.images} pictures, the deck shows {shown}")
    return handout


def print_chapter(context, origin: str, chapter: Path, out: Path) -> Handout:
    page = context.new_page()
    page.goto(f"{origin}/book/book/{chapter.name}", wait_until="load")
    page.evaluate(MATH_STATE_JS, MATHJAX_TIMEOUT_MS)
    page.emulate_media(media="print")
    shown = page.evaluate(IMAGES_JS)
    target = out / chapter.name.replace(".html", ".pdf")
    page.pdf(path=str(target), format="A4", print_background=True,
             margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"})
    page.close()
    handout = check(Handout(chapter.name, target))
    if handout.images < shown:
        handout.problems.append(f"the PDF draws {handout.images} pictures, the page shows {shown}")
    return handout


def run(html_dir: Path, slides_dir: Path, out: Path, chromium: str, notes: bool = False,
        only: tuple[str, ...] = ()) -> list[Handout]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    decks = sorted(slides_dir.glob("[0-9][0-9]-*.slides.html"))
    chapters = sorted((html_dir / "book").glob("[0-9][0-9]-*.html"))
    if only:
        decks = [d for d in decks if d.name.split(".")[0] in only]
        chapters = [c for c in chapters if c.stem in only]
    done = []
    with Server({"book": html_dir, "slides": slides_dir}) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=list(CHROMIUM_FLAGS))
        context = browser.new_context(viewport={"width": 1280, "height": 720}, service_workers="block")
        done += [print_deck(context, server.origin, deck, out, notes) for deck in decks]
        done += [print_chapter(context, server.origin, chapter, out) for chapter in chapters]
        browser.close()
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=BUILD / "html")
    parser.add_argument("--slides", type=Path, default=BUILD / "slides")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--notes", action="store_true", help="print each slide's speaker notes on the next page")
    parser.add_argument("--only", nargs="*", default=(), help="chapter stems, e.g. 03-icc")
    parser.add_argument("--chromium", default=None)
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("handouts: Chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 2
    for folder, make in ((args.html, "make book"), (args.slides, "make slides")):
        if not (folder / "index.html").is_file():
            print(f"handouts: {folder} has no index.html: run `{make}` first", file=sys.stderr)
            return 2
    start = time.perf_counter()
    handouts = run(args.html.resolve(), args.slides.resolve(), args.out, chromium, args.notes, tuple(args.only))
    for h in handouts:
        print(f"{'FAIL' if h.problems else 'ok':4} {h.pdf.name}: {h.pages} pages, {h.images} pictures")
        for problem in h.problems:
            print(f"     - {problem}")
    failed = sum(bool(h.problems) for h in handouts)
    print(f"handouts: {len(handouts)} PDFs in {args.out} ({failed} with problems, {time.perf_counter() - start:.0f} s)")
    return 1 if failed or not handouts else 0


if __name__ == "__main__":
    sys.exit(main())
