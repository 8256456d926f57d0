"""Build the lecture slides: one reveal.js deck per chapter, from the book's MyST sources.

A chapter ``book/NN-slug.md`` becomes ``_build/slides/NN-slug.slides.html``. Cells choose their
place in the deck with Jupyter's ``slideshow: {slide_type: ...}`` metadata (slide, subslide,
fragment, skip, notes; unmarked cells continue the current slide). Book-only cells (tag
``remove-cell``) and the solutions are left out, exactly as for the student notebooks; plotting
code tagged ``hide-input`` shows only its figure. A cell tagged ``slide-output-only`` keeps its
code in the book and the notebooks but shows only its figure or table on the slide (for code too
long to stand next to the result it makes). Widgets, which need a running kernel, are left out.

The chapter's outputs come from the book's execution cache (``_build/.jupyter_cache``) when it
holds a run of the same code, otherwise the chapter is executed here. reveal.js (package
``sphinx-revealjs``) and MathJax 3 (package ``sphinx-mathjax-offline``) are copied next to the
decks, so the slides load nothing from the network.

Usage::

    python tools/slides.py                      # every chapter, plus index.html
    python tools/slides.py --chapters 01 03     # only these chapters
    python tools/slides.py --no-execute         # structure only, no outputs
"""

from __future__ import annotations

import argparse
import copy
import html
import importlib.util
import json
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import yaml

from book_html import mathjax_source
from coursenb import (BOOK, REMOVE_TAGS, ROOT, chapters, drop_solutions, plain_markdown, read_chapter,
                      references, stable_ids)
from slide_layout import BreakHandOn, move_prose_to_notes, paginate, slide_type

TOOLS = Path(__file__).resolve().parent
TEMPLATE = "slides_template"
OUT_DIR = ROOT / "_build" / "slides"
CACHE_DIR = ROOT / "_build" / ".jupyter_cache"
REVEAL_DIR = "reveal.js"
MATHJAX_DIR = "mathjax"
# SVG output with its glyphs inside each formula: the speaker view copies the notes' HTML into
# another window, where only self-contained SVG still renders.
MATHJAX_ENTRY = "tex-svg.js"
THEME = "white"
REVEAL_FILES = ("LICENSE", "dist/reset.css", "dist/reveal.css", "dist/reveal.js",
                f"dist/theme/{THEME}.css", "dist/theme/fonts/source-sans-pro", "plugin/notes/notes.js")
MIN_SLIDES = 6
SLIDE_SIZE = (1280, 720)
HIDE_INPUT_TAGS = {"hide-input", "remove-input"}
SLIDE_OUTPUT_ONLY_TAGS = {"slide-output-only"}  # the book shows the code, the slide only its result
HIDE_OUTPUT_TAGS = {"hide-output", "remove-output"}
WIDGET = "application/vnd.jupyter.widget-view+json"
# Strings that would mean a deck loads something from a public host.
CDN_MARKERS = ("cdn", "unpkg", "jsdelivr", "cdnjs", "googleapis")


# --- assets ------------------------------------------------------------------------------------

def reveal_source() -> Path:
    """reveal.js 5 as shipped by the PyPI package sphinx-revealjs (``dist/`` and ``plugin/``)."""
    spec = importlib.util.find_spec("sphinx_revealjs")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package 'sphinx-revealjs' is not installed: run `make venv`")
    folder = Path(list(spec.submodule_search_locations)[0], "_static", "revealjs")
    if not (folder / "dist" / "reveal.js").is_file():
        raise RuntimeError(f"{folder} holds no reveal.js (dist/reveal.js is missing)")
    return folder


def copy_assets(out_dir: Path) -> None:
    """Copy what the decks use of reveal.js, and MathJax, next to the decks."""
    reveal, target = reveal_source(), out_dir / REVEAL_DIR
    for part in REVEAL_FILES:
        source = reveal / part
        if source.is_dir():
            shutil.copytree(source, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)
    shutil.copytree(mathjax_source(), out_dir / MATHJAX_DIR, dirs_exist_ok=True)


def book_mathjax_config() -> dict:
    """The book's ``mathjax3_config`` (its TeX macros), so slides and book typeset alike."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return ((config.get("sphinx") or {}).get("config") or {}).get("mathjax3_config") or {}


def mathjax_config() -> dict:
    book = book_mathjax_config()
    tex = {
        "inlineMath": [["$", "$"], ["\\(", "\\)"]],
        "displayMath": [["$$", "$$"], ["\\[", "\\]"]],
        "processEscapes": True,
        "processEnvironments": True,
        "macros": dict((book.get("tex") or {}).get("macros") or {}),
    }
    return {"tex": tex, "options": {"ignoreHtmlClass": "tex2jax_ignore"}, "svg": {"scale": 1.0, "fontCache": "local"}}


# --- the notebook a deck is made of ------------------------------------------------------------

def _tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def _is_placeholder(cell) -> bool:
    """A code cell left for the student ("# Your code here"): only comments, no output."""
    lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
    return all(line.startswith("#") for line in lines) and not cell.get("outputs")


def _clean_outputs(cell) -> None:
    """Drop what the book does not show either (warnings on stderr, glue records) and widgets,
    which a deck without a kernel cannot draw (a progress bar would leave an empty box)."""
    kept = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            continue
        if WIDGET in output.get("data", {}):
            continue
        if "data" in output:
            for key in [k for k in output["data"] if k.startswith("application/papermill.record/")]:
                del output["data"][key]
            if not output["data"]:
                continue
        kept.append(output)
    cell.outputs = kept


def _hides_input(cell) -> bool:
    """The slide shows the cell's output only: the book hides its code, or the code is too long."""
    return bool((HIDE_INPUT_TAGS | SLIDE_OUTPUT_ONLY_TAGS) & _tags(cell))


def _visible(cell) -> bool:
    if not cell.source.strip():
        return False
    if cell.cell_type != "code":
        return True
    if _is_placeholder(cell):
        return False
    hides_input = _hides_input(cell)
    hides_output = bool(HIDE_OUTPUT_TAGS & _tags(cell)) or not cell.get("outputs")
    return not (hides_input and hides_output)


def keep(cells: list, wanted) -> list:
    """The cells for which ``wanted(cell)`` holds, in order.

    A removed cell hands its ``slide``/``subslide`` break on to the next cell that is kept, so a
    slide boundary never disappears with the cell that carried it.
    """
    kept, breaks = [], BreakHandOn()
    for cell in cells:
        if not wanted(cell):
            breaks.leave(slide_type(cell))
            continue
        breaks.place(cell)
        kept.append(cell)
    return kept


def prepare(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Turn an executed chapter notebook into the notebook of its deck."""
    deck = copy.deepcopy(notebook)
    cells = keep(deck.cells, lambda cell: not REMOVE_TAGS & _tags(cell))
    survivors = {id(cell) for cell in drop_solutions(cells)}
    cells = move_prose_to_notes(keep(cells, lambda cell: id(cell) in survivors))
    counter, names = [0], references(notebook)
    for cell in cells:
        if cell.cell_type == "markdown":
            cell.source = plain_markdown(cell.source, counter, names).rstrip("\n")
        elif cell.cell_type == "code":
            _clean_outputs(cell)
            if HIDE_OUTPUT_TAGS & _tags(cell):
                cell.outputs = []
            if _hides_input(cell):
                cell.metadata["transient"] = {"remove_source": True}
    deck.cells = paginate(keep(cells, _visible))
    if not deck.cells:
        raise ValueError("the chapter has no cell to show on a slide")
    stable_ids(deck, "slides")  # cells cut in two by the pagination would share an id
    return deck


def book_title() -> str:
    return str(yaml.safe_load((ROOT / "_config.yml").read_text()).get("title", ""))


def add_subtitle(deck: nbformat.NotebookNode, subtitle: str) -> None:
    """Put the course and chapter under the title on the first slide (when it opens with a title)."""
    first = deck.cells[0]
    if first.cell_type == "markdown" and first.source.lstrip().startswith("# "):
        first.source += f'\n\n<p class="deck-subtitle">{html.escape(subtitle)}</p>'


def chapter_title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#\s+(.+?)\s*$", line)
        if match:
            return match.group(1)
    return path.stem


def _cached_outputs(notebook: nbformat.NotebookNode, cache_dir: Path):
    if not (cache_dir / "global.db").exists():
        return None
    from jupyter_cache import get_cache

    try:
        _, merged = get_cache(cache_dir).merge_match_into_notebook(copy.deepcopy(notebook))
    except KeyError:
        return None
    return merged


def execute(notebook: nbformat.NotebookNode, cache_dir: Path, timeout: int = 300):
    """The chapter with outputs: from the book's cache when the code matches, else run here.

    Returns the notebook and where its outputs came from ("cache" or "executed").
    """
    merged = _cached_outputs(notebook, cache_dir)
    if merged is not None:
        return merged, "cache"
    from nbclient import NotebookClient

    ran = copy.deepcopy(notebook)
    NotebookClient(ran, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(BOOK)}}).execute()
    return ran, "executed"


# --- HTML ------------------------------------------------------------------------------------

def exporter():
    from nbconvert import SlidesExporter

    return SlidesExporter(
        template_name=TEMPLATE,
        extra_template_basedirs=[str(TOOLS)],
        reveal_url_prefix=REVEAL_DIR,
        reveal_theme=THEME,
        reveal_transition="fade",
        reveal_width=str(SLIDE_SIZE[0]),
        reveal_height=str(SLIDE_SIZE[1]),
        mathjax_url=f"{MATHJAX_DIR}/{MATHJAX_ENTRY}",
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )


def render(deck: nbformat.NotebookNode, title: str, stem: str) -> tuple[str, dict[str, bytes]]:
    """The deck's HTML and its figures (file name relative to the deck -> bytes)."""
    from nbconvert.preprocessors import ExtractOutputPreprocessor

    slides = exporter()
    slides.register_preprocessor(ExtractOutputPreprocessor, enabled=True)
    resources = {
        "deck": {"title": title, "mathjax_config": json.dumps(mathjax_config())},
        "unique_key": "figure",
        "output_files_dir": f"{stem}_files",
    }
    body, resources = slides.from_notebook_node(deck, resources=resources)
    return body, dict(resources.get("outputs", {}))


class _SectionCounter(HTMLParser):
    """Counts slides: ``<section>`` elements that hold no ``<section>`` themselves."""

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []  # per open section: has it a child section?
        self.slides = 0

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            if self.stack:
                self.stack[-1] = True
            self.stack.append(False)

    def handle_endtag(self, tag):
        if tag == "section" and self.stack:
            if not self.stack.pop():
                self.slides += 1


def count_slides(page: str) -> int:
    counter = _SectionCounter()
    counter.feed(page)
    counter.close()
    return counter.slides


def cdn_references(page: str) -> list[str]:
    """Each place where a page names a public host (a CDN), with some context: there should be none."""
    found = []
    for match in re.finditer("|".join(CDN_MARKERS), page, flags=re.IGNORECASE):
        found.append(page[max(0, match.start() - 40):match.end() + 40].replace("\n", " "))
    return found


@dataclass
class Deck:
    chapter: str
    title: str
    path: Path
    slides: int
    outputs: str
    seconds: float


def build_deck(chapter: Path, out_dir: Path = OUT_DIR, run: bool = True,
               cache_dir: Path | None = None) -> Deck:
    """Write ``out_dir/NN-slug.slides.html`` (and its figures) for one chapter source."""
    start = time.perf_counter()
    notebook = read_chapter(chapter)
    source = "not executed"
    if run:
        notebook, source = execute(notebook, cache_dir or CACHE_DIR)
    title = chapter_title(chapter)
    deck = prepare(notebook)
    number = chapter.stem.split("-", 1)[0].lstrip("0")
    add_subtitle(deck, f"{book_title()} · chapter {number}" if number.isdigit() else book_title())
    page, figures = render(deck, title, chapter.stem)
    shutil.rmtree(out_dir / f"{chapter.stem}_files", ignore_errors=True)
    for name, data in figures.items():
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / name).write_bytes(data)
    target = out_dir / f"{chapter.stem}.slides.html"
    target.write_text(page, encoding="utf-8")
    return Deck(chapter.stem, title, target, count_slides(page), source, time.perf_counter() - start)


def index_page(decks: list[Deck]) -> str:
    items = "\n".join(
        f'<li><span class="num">{html.escape(d.chapter[:2])}</span>'
        f'<a href="{html.escape(d.path.name)}">{html.escape(d.title.replace("`", ""))}</a>'
        f'<span class="count">{d.slides} slides</span></li>'
        for d in decks
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>Lecture slides</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 48rem;
       margin: 3rem auto; padding: 0 1rem; color: #24292f; line-height: 1.5; }}
h1 {{ color: #1f3a5f; }}
ol {{ list-style: none; padding: 0; }}
li {{ display: flex; align-items: baseline; gap: 0.8rem; padding: 0.5rem 0;
      border-bottom: 1px solid #e1e4e8; font-size: 1.15rem; }}
a {{ color: #0b5cad; text-decoration: none; }}
a:hover {{ text-decoration: underline; }}
.num {{ width: 1.6rem; color: #6a737d; }}
.count {{ margin-left: auto; color: #6a737d; font-size: 0.9rem; white-space: nowrap; }}
.help {{ color: #57606a; font-size: 0.95rem; }}
</style>
</head>
<body>
<h1>Lecture slides</h1>
<p class="help">One deck per chapter of the book. Arrow keys move between slides, <kbd>S</kbd> opens the
speaker notes, <kbd>Esc</kbd> the overview.</p>
<ol>
{items}
</ol>
</body>
</html>
"""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _build_one(args: tuple) -> Deck | str:
    """A deck, or the reason (text) why the chapter gave none."""
    chapter, out_dir, run = args
    try:
        return build_deck(chapter, out_dir, run)
    except Exception as exc:  # one broken chapter must not hide the others
        (out_dir / f"{chapter.stem}.slides.html").unlink(missing_ok=True)
        lines = _ANSI.sub("", str(exc)).strip().splitlines()
        return f"{type(exc).__name__}: " + "\n".join(lines[-12:])


def build_all(out_dir: Path = OUT_DIR, selected: list[str] | None = None, run: bool = True,
              jobs: int = 2) -> tuple[list[Deck], dict[str, str]]:
    """Build the decks and the index; returns the decks and, per failed chapter, why it failed."""
    sources = [c for c in chapters() if not selected or any(c.stem.startswith(s) for s in selected)]
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_assets(out_dir)
    work = [(chapter, out_dir, run) for chapter in sources]
    if jobs > 1 and len(work) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_build_one, work))
    else:
        results = [_build_one(item) for item in work]
    decks = [r for r in results if isinstance(r, Deck)]
    failed = {c.stem: r for c, r in zip(sources, results) if isinstance(r, str)}
    every = sorted(out_dir.glob("[0-9][0-9]-*.slides.html"), key=lambda p: p.name)
    known = {d.path.name: d for d in decks}
    listed = [known.get(p.name) or _describe(p) for p in every
              if (BOOK / p.name.replace(".slides.html", ".md")).exists()]
    (out_dir / "index.html").write_text(index_page(listed), encoding="utf-8")
    return decks, failed


def _describe(page: Path) -> Deck:
    """A deck built earlier (when only some chapters are rebuilt)."""
    chapter = BOOK / page.name.replace(".slides.html", ".md")
    return Deck(chapter.stem, chapter_title(chapter), page, count_slides(page.read_text()), "earlier", 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter numbers or stems")
    parser.add_argument("--no-execute", action="store_true", help="leave code cells without output")
    parser.add_argument("--jobs", type=int, default=2, help="chapters built at once")
    args = parser.parse_args(argv)
    decks, failed = build_all(args.out, args.chapters, run=not args.no_execute, jobs=args.jobs)
    if not decks and not failed:
        print("no chapter sources book/NN-*.md found", file=sys.stderr)
        return 1
    status = 0
    for deck in decks:
        print(f"{deck.path.relative_to(ROOT) if deck.path.is_relative_to(ROOT) else deck.path}: "
              f"{deck.slides} slides, outputs {deck.outputs}, {deck.seconds:.1f} s")
        if deck.slides < MIN_SLIDES:
            print(f"warning: {deck.chapter} has only {deck.slides} slides (at least {MIN_SLIDES} "
                  "expected): mark more cells with slideshow slide_type 'slide'", file=sys.stderr)
        found = cdn_references(deck.path.read_text(encoding="utf-8"))
        if found:
            print(f"error: {deck.path.name} names a public host: {found[0]!r}", file=sys.stderr)
            status = 1
    for stem, reason in failed.items():
        print(f"error: no deck for {stem}: the chapter failed\n{reason}", file=sys.stderr)
        status = 1
    print(f"index: {args.out / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
