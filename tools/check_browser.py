"""Open the built book and slides in headless Chromium and fail on anything a reader would see broken.

The book (``_build/html``) and the decks (``_build/slides``) are served from a local HTTP server on
127.0.0.1. Every page of the book's ``book/`` folder, the book's index, the slides' index and every
deck are loaded; a page fails on a console error, an uncaught exception, a request that failed or
answered 4xx/5xx, a request to any other host, an image that did not load, or math left unrendered
(MathJax not finished, a TeX error, or ``$...$`` / ``\\(...\\)`` still visible as text), literal
TeX a reader would see (``\\_`` or ``\\text`` in the text, or an escape such as ``\\_`` inside a
formula's ``\\text{...}``, which MathJax prints with its backslash), and an image without alt
text (no ``alt``, or the file name that Sphinx puts there when a figure has none). A deck also
fails on a slide with nothing but a heading, on a slide that does not fit 1280x720 even when
scaled down to 75% (it would scroll), on a slide that the print layout (``?print-pdf``, used for the
handouts) spreads over more than one page, and on a speaker view (key S) that does not show the
notes with their formulas drawn.
Screenshots of the first screen of two chapters and two decks go to ``_build/screenshots/``.

Usage::

    python tools/check_browser.py [--html DIR] [--slides DIR] [--shots DIR] [--chromium PATH]
    python tools/check_browser.py --every-slide      # also a screenshot of every slide

Needs Chromium (Debian package ``chromium``) and the Python package ``playwright``, which drives
the installed browser (no browser is downloaded).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
VIEWPORT = {"width": 1280, "height": 720}
PAGE_TIMEOUT_MS = 30_000
MATHJAX_TIMEOUT_MS = 20_000

# Runs in the page: waits for MathJax 3 (if the page loads it) and reports what was rendered.
MATH_STATE_JS = """
async (timeout) => {
  const start = Date.now();
  const loads = Array.from(document.scripts).some(s => /mathjax/i.test(s.src));
  let finished = !loads;
  while (loads && !finished && Date.now() - start < timeout) {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await MathJax.startup.promise;
      finished = true;
    } else {
      await new Promise(r => setTimeout(r, 50));
    }
  }
  const skip = new Set(["SCRIPT", "STYLE", "PRE", "CODE", "TEXTAREA", "MJX-CONTAINER", "NOSCRIPT"]);
  const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el; el = el.parentElement) {
        if (skip.has(el.tagName)) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    }
  });
  const pattern = /\\$[^$\\n]+\\$|\\\\\\(|\\\\\\[|\\\\begin\\{|\\\\_|\\\\text\\b/;
  const leftover = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const match = node.textContent.match(pattern);
    if (match) leftover.push(node.textContent.slice(Math.max(0, match.index - 30), match.index + 50).trim());
  }
  const errors = Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
    .map(e => e.getAttribute("data-mjx-error") || e.textContent);
  // Inside \\text{...} MathJax shows escapes such as \\_ literally, backslash included.
  const literal = [];
  // An undefined macro is not an error for MathJax (it is shown in red): find those too.
  if (finished && loads && MathJax.startup.document && MathJax.startup.toMML) {
    for (const item of MathJax.startup.document.math) {
      if (/<merror|mathcolor="red"/.test(MathJax.startup.toMML(item.root))) errors.push(item.math);
      if (/\\\\text\\{[^}]*\\\\[_&%$#]/.test(item.math)) literal.push(item.math.slice(0, 80));
    }
  }
  return {loads, finished, rendered: document.querySelectorAll("mjx-container").length,
          errors, leftover: leftover.slice(0, 5), literal: literal.slice(0, 5)};
}
"""

REFRESH_JS = "() => !!document.querySelector('meta[http-equiv=refresh i]')"

# Images whose alt text is missing or only the file name (what Sphinx writes when a figure has none).
IMAGES_WITHOUT_ALT_JS = """
() => Array.from(document.images)
  .filter(img => {
    if (!img.hasAttribute("alt")) return true;
    const alt = img.getAttribute("alt").trim();
    return alt === (img.getAttribute("src") || "") || /^\\S+\\.(png|svg|jpe?g|gif|webp)$/i.test(alt);
  })
  .map(img => (img.getAttribute("src") || "").slice(0, 120))
"""

# Runs in a deck: slides that show nothing but a heading (title slides, an h1 alone, excepted).
EMPTY_SLIDES_JS = """
() => {
  if (!(window.Reveal && Reveal.isReady())) return [];
  const empty = [];
  Reveal.getSlides().forEach((slide, i) => {
    if (slide.querySelector("h1")) return;
    const copy = slide.cloneNode(true);
    copy.querySelectorAll("aside.notes, h2, h3, h4, h5, h6, section").forEach(e => e.remove());
    const text = copy.textContent.replace(/\\s+/g, " ").replace("¶", "").trim();
    const media = copy.querySelector("img, svg, canvas, video, table, pre, mjx-container, iframe");
    if (!text && !media) {
      const heading = slide.querySelector("h2, h3, h4");
      empty.push({slide: i + 1, title: heading ? heading.textContent.replace("¶", "").trim() : ""});
    }
  });
  return empty;
}
"""

BROKEN_IMAGES_JS = """
() => Array.from(document.images)
  .filter(img => img.complete && img.naturalWidth === 0 && img.getAttribute("src"))
  .map(img => img.getAttribute("src").slice(0, 120))
"""

# Runs in a deck: visits every slide and reports the ones whose content is taller than the frame.
SLIDE_OVERFLOW_JS = """
async () => {
  if (!(window.Reveal && Reveal.isReady())) return null;
  const tall = [];
  const slides = Reveal.getSlides();
  for (let i = 0; i < slides.length; i++) {
    const indices = Reveal.getIndices(slides[i]);
    Reveal.slide(indices.h, indices.v);
    await new Promise(r => requestAnimationFrame(() => r()));
    const el = slides[i];
    const extra = el.scrollHeight - el.clientHeight;
    if (extra > 8 || el.dataset.fit) {
      const heading = el.querySelector("h1, h2, h3");
      tall.push({slide: i + 1, extra: Math.max(0, extra), fit: el.dataset.fit || "1",
                 title: heading ? heading.textContent.replace("¶", "").trim() : ""});
    }
  }
  Reveal.slide(0, 0);
  return {total: slides.length, tall};
}
"""


# A deck opened for printing (?print-pdf) marks its root element once reveal.js has cut the pages.
PRINT_QUERY = "print-pdf&pdfSeparateFragments=false"
PRINT_READY_JS = "() => document.documentElement.dataset.pdfReady === 'true'"

# Runs in a deck laid out for printing: each slide that reveal.js spread over more than one page
# (its content is taller than the page even when fitted to the frame).
PRINT_OVERFLOW_JS = """
() => {
  const config = Reveal.getConfig();
  const page = Math.floor(config.height * (1 + config.margin)) + config.pdfPageHeightOffset;
  return Array.from(document.querySelectorAll(".pdf-page")).map((sheet, i) => {
    const slide = sheet.querySelector("section");
    const heading = slide && slide.querySelector("h1, h2, h3");
    return {slide: i + 1, pages: Math.round(sheet.offsetHeight / page),
            height: slide ? slide.scrollHeight : 0, fit: (slide && slide.dataset.fit) || "1",
            title: heading ? heading.textContent.replace("¶", "").trim() : ""};
  }).filter(sheet => sheet.pages > 1);
}
"""


GO_TO_SLIDE_JS = """
(n) => {
  const i = Reveal.getIndices(Reveal.getSlides()[n]);
  Reveal.configure({transition: "none"});
  Reveal.slide(i.h, i.v);
}
"""

# The words of an element around its formulas, spaces normalised: a formula's own text differs
# between the deck and the speaker view.
PROSE_OF_JS = """
  const proseOf = (element) => {
    const copy = element.cloneNode(true);
    copy.querySelectorAll("mjx-container").forEach(m => m.remove());
    return copy.textContent.replace(/\\s+/g, " ").trim();
  };
"""

# Runs in a deck: goes to the first slide with speaker notes (one whose notes hold math, if any)
# and returns the first words of the notes and how many formulas they hold.
NOTES_JS = """
() => {""" + PROSE_OF_JS + """
  const slides = Reveal.getSlides().filter(s => s.querySelector("aside.notes"));
  const slide = slides.find(s => s.querySelector("aside.notes mjx-container")) || slides[0];
  if (!slide) return null;
  const i = Reveal.getIndices(slide);
  Reveal.slide(i.h, i.v);
  const notes = slide.querySelector("aside.notes");
  const words = proseOf(notes).split(" ").slice(0, 4).join(" ");
  return {text: words, math: notes.querySelectorAll("mjx-container").length};
}
"""

# Runs in the speaker view: are the notes there, and is each formula drawn (an SVG with content)?
SPEAKER_NOTES_JS = """
(wanted) => {""" + PROSE_OF_JS + """
  const box = document.querySelector(".speaker-controls-notes");
  if (!box || !proseOf(box).includes(wanted.text)) return null;
  const drawn = Array.from(box.querySelectorAll("mjx-container svg"))
    .filter(svg => svg.getBoundingClientRect().width > 0 && svg.querySelector("path, use")).length;
  return {drawn};
}
"""


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium executable: the one given, else $CHROMIUM, else /usr/bin/chromium or one on PATH."""
    candidates = [explicit] if explicit else [os.environ.get("CHROMIUM", ""), *CHROMIUM_CANDIDATES]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file():
            return candidate
        if shutil.which(candidate):
            return shutil.which(candidate)
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves ``/book/...`` from the book's HTML and ``/slides/...`` from the decks."""

    def __init__(self, *args, mounts: dict[str, Path], **kwargs):
        self.mounts = mounts
        super().__init__(*args, directory=str(next(iter(mounts.values()))), **kwargs)

    def do_GET(self):
        if self.path == "/favicon.ico":  # asked for by the browser itself, not by a page
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def translate_path(self, path):
        parts = unquote(urlsplit(path).path).lstrip("/").split("/", 1)
        base = self.mounts.get(parts[0])
        if base is None:
            return str(Path("/nonexistent") / parts[0])
        target = (base / (parts[1] if len(parts) > 1 else "")).resolve()
        return str(target) if target.is_relative_to(base.resolve()) else "/nonexistent"

    def log_message(self, *args):  # keep the check's output readable
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # a page asks for many files at once; do not drop connections

    def handle_error(self, request, client_address):
        # The browser drops connections when a page closes; only report what is not that.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@dataclass
class Server:
    mounts: dict[str, Path]
    httpd: _QuietServer | None = None

    def __enter__(self) -> "Server":
        handler = functools.partial(_Handler, mounts=self.mounts)
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@dataclass
class PageReport:
    url: str
    kind: str  # "book" or "slides"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    math_rendered: int = 0


def pages_to_check(html_dir: Path, slides_dir: Path) -> list[tuple[str, str]]:
    """(kind, path below the server root) of every page to load, book first."""
    pages = [("book", "book/index.html")]
    pages += [("book", f"book/book/{p.name}") for p in sorted((html_dir / "book").glob("*.html"))]
    pages.append(("slides", "slides/index.html"))
    pages += [("slides", f"slides/{p.name}") for p in sorted(slides_dir.glob("*.slides.html"))]
    return pages


def screenshot_targets(pages: list[tuple[str, str]]) -> list[str]:
    """Two chapters and two decks (numbered ones first), as server paths."""
    def pick(kind: str, suffix: str) -> list[str]:
        candidates = [path for k, path in pages if path.startswith(kind) and path.endswith(suffix)]
        numbered = [p for p in candidates if Path(p).name[:2].isdigit()]
        return (numbered + [p for p in candidates if p not in numbered])[:2]

    return pick("book/book/", ".html") + pick("slides", ".slides.html")


def _is_local(url: str, origin: str) -> bool:
    return url.startswith(origin) or url.startswith(("data:", "blob:", "about:"))


def check_page(context, origin: str, kind: str, path: str, shots: Path | None,
               every_slide: bool = False) -> PageReport:
    report = PageReport(f"{origin}/{path}", kind)
    page = context.new_page()
    page.on("console", lambda msg: msg.type == "error" and report.problems.append(
        f"console error: {msg.text}"))
    page.on("pageerror", lambda exc: report.problems.append(f"uncaught exception: {exc}"))
    page.on("requestfailed", lambda req: _is_local(req.url, origin) and report.problems.append(
        f"request failed: {req.url} ({req.failure})"))
    page.on("response", lambda res: res.status >= 400 and report.problems.append(
        f"HTTP {res.status}: {res.url}"))
    pending: dict = {}  # request -> its URL, while it is in flight
    page.on("request", lambda req: pending.__setitem__(req, req.url))
    page.on("requestfinished", lambda req: pending.pop(req, None))
    page.on("requestfailed", lambda req: pending.pop(req, None))
    try:
        page.goto(report.url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        if _evaluate(page, REFRESH_JS):  # a redirect page (the book's index): check where it leads
            page.wait_for_url(lambda url: url != report.url, timeout=PAGE_TIMEOUT_MS)
            page.wait_for_load_state("load", timeout=PAGE_TIMEOUT_MS)
            report.notes.append(f"redirects to {page.url.removeprefix(origin)}")
        _wait_until_quiet(page, pending, report)
        _check_content(page, report, shots, path, every_slide)
    except Exception as exc:  # a page that cannot be loaded is a failure, not a crash of the check
        report.problems.append(f"could not check the page: {exc}")
    finally:
        page.close()
    return report


def _wait_until_quiet(page, pending: dict, report: PageReport) -> None:
    """Wait for the network to fall quiet; what is still loading after the timeout is a problem.

    On a busy machine a large page can keep the browser from ever seeing the half second of
    silence it waits for even though every request has been answered: that is noted, not failed.
    """
    try:
        page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_MS)
        return
    except Exception:
        pass
    page.wait_for_timeout(1_000)
    if pending:
        shown = ", ".join(list(pending.values())[:3])
        report.problems.append(f"{len(pending)} request(s) still loading after "
                               f"{PAGE_TIMEOUT_MS // 1000} s: {shown}")
    else:
        report.notes.append(f"network never quiet for {PAGE_TIMEOUT_MS // 1000} s, "
                            "but every request was answered")


def _evaluate(page, script: str, *args):
    for attempt in range(3):
        try:
            return page.evaluate(script, *args)
        except Exception as exc:  # the page navigated (meta refresh) while we looked
            if "context was destroyed" not in str(exc) or attempt == 2:
                raise
            page.wait_for_load_state("load", timeout=PAGE_TIMEOUT_MS)
    return None


def _check_content(page, report: PageReport, shots: Path | None, path: str, every_slide: bool) -> None:
    math = _evaluate(page, MATH_STATE_JS, MATHJAX_TIMEOUT_MS)
    report.math_rendered = math["rendered"]
    if math["loads"] and not math["finished"]:
        report.problems.append("MathJax did not start (its script failed to load?)")
    for error in math["errors"]:
        report.problems.append(f"TeX error: {error}")
    for text in math["leftover"]:
        report.problems.append(f"unrendered math or literal TeX in the text: {text!r}")
    for tex in math.get("literal", []):
        report.problems.append(f"literal TeX escape shown in a formula: {tex!r}")
    for src in _evaluate(page, BROKEN_IMAGES_JS):
        report.problems.append(f"image did not load: {src}")
    for src in _evaluate(page, IMAGES_WITHOUT_ALT_JS):
        report.problems.append(f"image without alt text: {src}")
    if path.endswith(".slides.html"):
        ready = _evaluate(page, "() => !!(window.Reveal && Reveal.isReady()) && Reveal.getTotalSlides()")
        if not ready:
            report.problems.append("reveal.js did not start")
        else:
            report.notes.append(f"{ready} slides")
            for slide in _evaluate(page, EMPTY_SLIDES_JS):
                report.problems.append(f"slide {slide['slide']} ({slide['title'][:40]}) shows only a heading")
            notes = _check_speaker_notes(page)
            if notes is False:
                report.notes.append("speaker view shows the notes and their math")
            elif notes:
                report.problems.append(notes)
            overflow = _evaluate(page, SLIDE_OVERFLOW_JS)
            for slide in (overflow or {}).get("tall", []):
                where = f"slide {slide['slide']} ({slide['title'][:40]})"
                if slide["extra"] > 8:  # unreadable at 1280x720: part of it is off the screen
                    report.problems.append(f"{where} does not fit 1280x720 even at "
                                           f"{float(slide['fit']):.0%}: {slide['extra']} px scroll")
                else:
                    report.notes.append(f"{where} shown at {float(slide['fit']):.0%}")
    if shots is not None:
        name = ("book-" if report.kind == "book" else "slides-") + Path(path).name.split(".")[0]
        page.screenshot(path=str(shots / f"{name}.png"))
        report.notes.append(f"screenshot {name}.png")
        if every_slide and path.endswith(".slides.html"):
            _shoot_every_slide(page, shots, name)


def open_for_print(context, url: str, notes: bool = False):
    """A page with the deck at ``url`` laid out by reveal.js for printing, one slide per page."""
    page = context.new_page()
    query = PRINT_QUERY + ("&showNotes=separate-page" if notes else "")
    page.goto(f"{url}?{query}", wait_until="load", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(PRINT_READY_JS, timeout=PAGE_TIMEOUT_MS)
    return page


def print_overflow(page) -> list[str]:
    """The slides of a deck laid out for printing that take more than one page, described."""
    return [f"slide {s['slide']} ({s['title'][:40]}) is taller than a printed page even at "
            f"{float(s['fit']):.0%} ({s['height']} px): it prints on {s['pages']} pages"
            for s in _evaluate(page, PRINT_OVERFLOW_JS)]


def check_print_layout(context, url: str) -> list[str]:
    """Problems of a deck's print layout (the handouts): a slide that does not fit one page."""
    try:
        page = open_for_print(context, url)
    except Exception as exc:
        return [f"the print layout (?{PRINT_QUERY}) did not finish: {exc}"]
    try:
        return print_overflow(page)
    finally:
        page.close()


def _check_speaker_notes(page) -> str | bool | None:
    """Open the speaker view on the first slide with notes (preferring notes with math).

    Returns None for a deck without notes, False when the speaker view shows them with their
    formulas drawn, else the problem.
    """
    wanted = _evaluate(page, NOTES_JS)
    if not wanted:
        return None
    try:
        with page.context.expect_page(timeout=10_000) as opened:
            page.keyboard.press("s")
    except Exception:
        return "the key S opens no speaker view"
    speaker = opened.value
    try:
        handle = speaker.wait_for_function(SPEAKER_NOTES_JS, arg=wanted, timeout=10_000)
        shown = handle.json_value()
    except Exception:
        return f"the speaker view (key S) does not show the notes {wanted['text']!r}"
    finally:
        speaker.close()
        _evaluate(page, "() => Reveal.slide(0, 0)")
    if shown["drawn"] < wanted["math"]:
        return (f"the speaker view draws {shown['drawn']} of the {wanted['math']} formulas in the notes "
                f"{wanted['text']!r}")
    return False


def _shoot_every_slide(page, shots: Path, name: str) -> None:
    total = _evaluate(page, "() => Reveal.getTotalSlides()")
    for number in range(total):
        _evaluate(page, GO_TO_SLIDE_JS, number)
        page.wait_for_timeout(150)
        page.screenshot(path=str(shots / f"{name}-{number + 1:02d}.png"))


def run(html_dir: Path, slides_dir: Path, shots: Path, chromium: str,
        every_slide: bool = False) -> list[PageReport]:
    from playwright.sync_api import sync_playwright

    pages = pages_to_check(html_dir, slides_dir)
    wanted = set(screenshot_targets(pages))
    shots.mkdir(parents=True, exist_ok=True)
    reports = []
    with Server({"book": html_dir, "slides": slides_dir}) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=list(CHROMIUM_FLAGS))
        context = browser.new_context(viewport=VIEWPORT, service_workers="block")
        outside = []

        def only_local(route):  # nothing may come from another host
            if _is_local(route.request.url, server.origin):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        for kind, path in pages:
            seen = len(outside)
            shoot = path in wanted or (every_slide and path.endswith(".slides.html"))
            report = check_page(context, server.origin, kind, path, shots if shoot else None, every_slide)
            if path.endswith(".slides.html"):
                report.problems += check_print_layout(context, report.url)
            report.problems += [f"request to another host: {url}" for url in outside[seen:]]
            reports.append(report)
        browser.close()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=BUILD / "html", help="the built book")
    parser.add_argument("--slides", type=Path, default=BUILD / "slides", help="the built decks")
    parser.add_argument("--shots", type=Path, default=BUILD / "screenshots", help="screenshot folder")
    parser.add_argument("--chromium", default=None, help="Chromium executable (default: /usr/bin/chromium)")
    parser.add_argument("--every-slide", action="store_true", help="also save a screenshot of every slide")
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("check-browser: Chromium is not installed (looked for /usr/bin/chromium and chromium on PATH). "
              "Install it with `apt-get install -y chromium chromium-driver`, or give --chromium PATH.",
              file=sys.stderr)
        return 2
    for folder, make in ((args.html, "make book"), (args.slides, "make slides")):
        if not (folder / "index.html").is_file():
            print(f"check-browser: {folder} has no index.html: run `{make}` first", file=sys.stderr)
            return 2
    try:
        import playwright  # noqa: F401  (drives the installed Chromium)
    except ImportError:
        print("check-browser: the Python package playwright is missing: run `make venv`", file=sys.stderr)
        return 2
    start = time.perf_counter()
    reports = run(args.html.resolve(), args.slides.resolve(), args.shots, chromium, args.every_slide)
    failed = [r for r in reports if r.problems]
    for report in reports:
        status = "FAIL" if report.problems else "ok"
        extra = f", {report.math_rendered} formulas" if report.math_rendered else ""
        print(f"{status:4} {report.url}{extra}")
        for note in report.notes:
            print(f"     {note}")
        for problem in report.problems:
            print(f"     - {problem}")
    print(f"check-browser: {len(reports) - len(failed)} pages ok, {len(failed)} with problems "
          f"({time.perf_counter() - start:.0f} s, {chromium})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
