"""tools/check_browser.py: finding Chromium, the pages and the local server, then (where Chromium
is installed) the toy site of tests/conftest.py in the browser."""

import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_browser  # noqa: E402  (tools/ is not a package)


@pytest.fixture
def site(tmp_path):
    html, decks = tmp_path / "html", tmp_path / "slides"
    (html / "book").mkdir(parents=True)
    decks.mkdir()
    (html / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    for name in ("intro", "01-first", "02-second", "03-third", "api"):
        (html / "book" / f"{name}.html").write_text(f"<p>{name}</p>")
    (decks / "index.html").write_text("<ul></ul>")
    for name in ("01-first", "02-second", "03-third"):
        (decks / f"{name}.slides.html").write_text(f"<section>{name}</section>")
    (tmp_path / "secret.txt").write_text("not served")
    return html, decks


def test_missing_chromium_is_reported_and_fails(monkeypatch, capsys, site):
    monkeypatch.setattr(check_browser, "CHROMIUM_CANDIDATES", ("/nonexistent/chromium",))
    monkeypatch.delenv("CHROMIUM", raising=False)
    html, decks = site
    assert check_browser.main(["--html", str(html), "--slides", str(decks)]) == 2
    assert "Chromium is not installed" in capsys.readouterr().err


def test_an_explicit_chromium_path_is_used(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    assert check_browser.find_chromium(str(fake)) == str(fake)


def test_missing_build_is_reported(monkeypatch, capsys, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    code = check_browser.main(["--html", str(tmp_path / "nothing"), "--slides", str(tmp_path),
                               "--chromium", str(fake)])
    assert code == 2
    assert "make book" in capsys.readouterr().err


def test_every_book_page_and_deck_is_checked(site):
    html, decks = site
    pages = check_browser.pages_to_check(html, decks)
    paths = [path for _, path in pages]
    assert paths[0] == "book/index.html"
    assert "book/book/api.html" in paths and "book/book/02-second.html" in paths
    assert "slides/index.html" in paths
    assert [p for p in paths if p.endswith(".slides.html")] == [
        "slides/01-first.slides.html", "slides/02-second.slides.html", "slides/03-third.slides.html"]


def test_screenshots_take_two_chapters_and_two_decks(site):
    targets = check_browser.screenshot_targets(check_browser.pages_to_check(*site))
    assert targets == ["book/book/01-first.html", "book/book/02-second.html",
                       "slides/01-first.slides.html", "slides/02-second.slides.html"]


def test_server_serves_both_folders_and_nothing_else(site):
    html, decks = site
    with check_browser.Server({"book": html, "slides": decks}) as server:
        assert server.origin.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{server.origin}/book/book/api.html") as reply:
            assert reply.read() == b"<p>api</p>"
        with urllib.request.urlopen(f"{server.origin}/slides/02-second.slides.html") as reply:
            assert b"02-second" in reply.read()
        with urllib.request.urlopen(f"{server.origin}/favicon.ico") as reply:
            assert reply.status == 204  # the browser's own request is no failure of the site
        for path in ("/secret.txt", "/book/../secret.txt", "/slides/missing.html"):
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(server.origin + path)
            assert error.value.code == 404


def test_only_the_local_server_counts_as_local():
    origin = "http://127.0.0.1:8000"
    assert check_browser._is_local("http://127.0.0.1:8000/book/x.js", origin)
    assert check_browser._is_local("data:image/png;base64,AAAA", origin)
    assert not check_browser._is_local("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js", origin)
    assert not check_browser._is_local("http://127.0.0.1:9999/x.js", origin)


# --- in the browser (skipped where Chromium or playwright is missing) ----------------------------

@pytest.fixture(scope="module")
def browser_site(toy_site):
    return toy_site.chromium, toy_site.html, toy_site.decks, toy_site.deck.path


def _deck_report(chromium, html, decks, tmp_path):
    reports = check_browser.run(html, decks, tmp_path / "shots", chromium)
    return next(r for r in reports if r.url.endswith(".slides.html"))


@pytest.fixture(scope="module")
def toy_report(browser_site, tmp_path_factory):
    chromium, html, decks, _ = browser_site
    return _deck_report(chromium, html, decks, tmp_path_factory.mktemp("toy"))


def test_a_deck_that_fits_passes_and_its_notes_show_their_math(toy_report):
    assert toy_report.problems == []
    assert "speaker view shows the notes and their math" in toy_report.notes


def test_a_slide_taller_than_the_frame_is_scaled_and_prints_on_one_page(toy_report):
    scaled = [n for n in toy_report.notes if "(A long listing) shown at" in n]
    assert scaled and not scaled[0].endswith("shown at 100%"), toy_report.notes
    assert not [p for p in toy_report.problems if "printed page" in p], toy_report.problems


def test_a_slide_too_tall_even_at_75_percent_fails(browser_site, tmp_path):
    chromium, html, decks, path = browser_site
    page = path.read_text()
    tall = '<section><h2>Too tall</h2><div style="height: 1400px">x</div></section>\n'
    bad = decks / "02-tall.slides.html"
    bad.write_text(page.replace("<section", tall + "<section", 1))
    try:
        reports = check_browser.run(html, decks, tmp_path / "shots", chromium)
    finally:
        bad.unlink()
    report = next(r for r in reports if r.url.endswith("02-tall.slides.html"))
    assert any("does not fit 1280x720" in p for p in report.problems), report.problems
    assert any(re.match(r"slide \d+ \(Too tall\) is taller than a printed page even at 75%", p)
               for p in report.problems), report.problems


class _NeverQuietPage:
    """Stands in for a browser page whose network never falls quiet."""

    def wait_for_load_state(self, state, timeout):
        raise TimeoutError(f"Timeout {timeout}ms exceeded waiting for {state}")

    def wait_for_timeout(self, ms):
        pass


def test_a_request_still_loading_after_the_timeout_is_a_problem():
    report = check_browser.PageReport("http://127.0.0.1:1/book/x.html", "book")
    check_browser._wait_until_quiet(_NeverQuietPage(), {object(): "http://127.0.0.1:1/big.png"}, report)
    assert report.problems == [
        f"1 request(s) still loading after {check_browser.PAGE_TIMEOUT_MS // 1000} s: "
        "http://127.0.0.1:1/big.png"]


def test_a_page_whose_requests_all_finished_is_only_noted():
    report = check_browser.PageReport("http://127.0.0.1:1/book/x.html", "book")
    check_browser._wait_until_quiet(_NeverQuietPage(), {}, report)
    assert report.problems == []
    assert "every request was answered" in report.notes[0]


PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
EXTRA_DECKS = {
    "03-empty.slides.html": "<section><h2>Nothing here</h2></section>\n",
    "04-figure.slides.html": f'<section><h2>A figure</h2><img alt="a dot" src="{PIXEL}"></section>\n',
    "05-tex.slides.html": ("<section><h2>Escapes</h2><p>the column SES\\_within</p>"
                           "<p>\\(\\text{SES\\_within}_{ij}\\)</p></section>\n"),
}


@pytest.fixture(scope="module")
def problem_reports(browser_site, tmp_path_factory):
    """One run of the check over decks and a book page that each carry one kind of problem."""
    chromium, html, decks, path = browser_site
    page = path.read_text()
    written = [decks / name for name in EXTRA_DECKS]
    for target, section in zip(written, EXTRA_DECKS.values()):
        target.write_text(page.replace("<section", section + "<section", 1))
    figure = html / "book" / "figure.html"
    figure.write_text(f'<!DOCTYPE html><title>f</title><img src="{PIXEL}">'
                      f'<img alt="../_images/a.png" src="{PIXEL}"><img alt="Residuals by school" src="{PIXEL}">')
    try:
        reports = check_browser.run(html, decks, tmp_path_factory.mktemp("shots"), chromium)
    finally:
        for target in [*written, figure]:
            target.unlink()
    return {r.url.rsplit("/", 1)[-1]: r.problems for r in reports}


def test_a_slide_with_only_a_heading_fails(problem_reports):
    problems = problem_reports["03-empty.slides.html"]
    assert any("(Nothing here) shows only a heading" in p for p in problems), problems


def test_a_slide_with_a_figure_is_not_empty(problem_reports):
    problems = problem_reports["04-figure.slides.html"]
    assert not [p for p in problems if "only a heading" in p or "alt text" in p], problems


def test_literal_tex_in_text_and_in_a_formula_fails(problem_reports):
    problems = problem_reports["05-tex.slides.html"]
    assert any("literal TeX in the text" in p and "column SES" in p for p in problems), problems
    assert any("literal TeX escape shown in a formula" in p for p in problems), problems


def test_an_image_without_alt_text_fails(problem_reports):
    problems = problem_reports["figure.html"]
    assert sum("image without alt text" in p for p in problems) == 2, problems
