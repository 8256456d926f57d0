"""tools/slides.py on a small synthetic chapter: what goes into a deck and what stays out."""

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import slides  # noqa: E402  (tools/ is not a package)

FRONT_MATTER = '''\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
'''

CHAPTER = FRONT_MATTER + '''
(ch-toy)=
# A toy chapter

+++ {"slideshow": {"slide_type": "slide"}}

## Overview

The model is $y_{ij} = \\beta_0 + u_j + e_{ij}$.

+++ {"slideshow": {"slide_type": "notes"}}

NOTES_MARKER: say this out loud.

+++ {"slideshow": {"slide_type": "slide"}}

## Code

```{code-cell} ipython3
print("OUTPUT_MARKER", 6 * 7)
```

```{code-cell} ipython3
:tags: [remove-cell]
assert 6 * 7 == 42  # REMOVED_MARKER
```

+++ {"slideshow": {"slide_type": "fragment"}}

FRAGMENT_MARKER appears on a click.

+++ {"slideshow": {"slide_type": "subslide"}}

### A subslide

```{math}
:label: toy-eq
\\Var(y_{ij}) = \\tau_{00} + \\sigma^2
```

+++ {"slideshow": {"slide_type": "skip"}}

SKIPPED_MARKER is in the book only.

+++ {"slideshow": {"slide_type": "slide"}}

## A figure

```{code-cell} ipython3
:tags: [hide-input]
import matplotlib
matplotlib.use("module://matplotlib_inline.backend_inline")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([0, 1], [0, 1])
plt.show()
```

+++ {"slideshow": {"slide_type": "slide"}}

## Exercises

```{exercise} Try it
:label: toy-ex1

EXERCISE_MARKER: compute something.
```

```{code-cell} ipython3
# Your code here
```

```{solution-start} toy-ex1
:class: dropdown
```

SOLUTION_MARKER: the answer.

```{code-cell} ipython3
answer = 42  # SOLUTION_CODE_MARKER
```

```{solution-end}
```

+++ {"slideshow": {"slide_type": "slide"}}

## Summary

SUMMARY_MARKER
'''


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    path = tmp_path_factory.mktemp("book") / "07-toy.md"
    path.write_text(CHAPTER)
    return path


@pytest.fixture(scope="module")
def built(chapter, tmp_path_factory):
    """The toy deck, structure only (no kernel)."""
    out = tmp_path_factory.mktemp("slides")
    deck = slides.build_deck(chapter, out, run=False)
    return deck, deck.path.read_text()


@pytest.fixture(scope="module")
def executed(chapter, tmp_path_factory):
    """The toy deck with outputs: no cache holds it, so the chapter runs in a kernel."""
    out = tmp_path_factory.mktemp("slides-run")
    deck = slides.build_deck(chapter, out, run=True, cache_dir=out / "no-cache")
    return deck, deck.path.read_text(), out


def test_deck_is_written_next_to_its_name(built):
    deck, _ = built
    assert deck.path.name == "07-toy.slides.html"
    assert deck.title == "A toy chapter"


def test_slides_and_subslides_are_counted(built):
    deck, page = built
    # title, Overview, Code (+ its subslide), figure, Exercises, Summary
    assert deck.slides == 7
    assert slides.count_slides(page) == 7


def test_solutions_are_left_out(built):
    _, page = built
    assert "SOLUTION_MARKER" not in page
    assert "SOLUTION_CODE_MARKER" not in page
    assert "EXERCISE_MARKER" in page


def test_book_only_cells_are_left_out(built):
    _, page = built
    assert "REMOVED_MARKER" not in page
    assert "SKIPPED_MARKER" not in page


def test_placeholder_code_cells_are_left_out(built):
    _, page = built
    assert "Your code here" not in page


def test_notes_become_speaker_notes(built):
    _, page = built
    start = page.index('<aside class="notes">')
    assert "NOTES_MARKER" in page[start:page.index("</aside>", start)]
    assert "notes/notes.js" in page and "RevealNotes" in page


def test_fragments_are_marked(built):
    _, page = built
    assert page.count('class="fragment"') == 1
    assert page.index('class="fragment"') < page.index("FRAGMENT_MARKER")


def test_myst_markup_becomes_plain_math(built):
    _, page = built
    assert "{math}" not in page and ":label:" not in page
    assert "$$" in page and "\\tau_{00}" in page
    assert "(ch-toy)=" not in page


def test_book_macros_reach_mathjax(built):
    _, page = built
    assert '"Var": "\\\\operatorname{Var}"' in page


def test_assets_are_local(built):
    deck, page = built
    assert 'src="reveal.js/dist/reveal.js"' in page
    assert 'src="mathjax/tex-svg.js"' in page
    assert '"fontCache": "local"' in page
    assert slides.cdn_references(page) == []


def test_no_output_file_names_a_public_host(built):
    deck, _ = built
    slides.copy_assets(deck.path.parent)
    (deck.path.parent / "index.html").write_text(slides.index_page([deck]))
    for page in deck.path.parent.glob("*.html"):
        text = page.read_text().lower()
        for marker in ("cdn", "unpkg", "jsdelivr", "cdnjs", "googleapis"):
            assert marker not in text, f"{page.name} names {marker}"


def test_assets_are_copied(built, tmp_path):
    slides.copy_assets(tmp_path)
    assert (tmp_path / "reveal.js" / "dist" / "reveal.js").is_file()
    assert (tmp_path / "reveal.js" / "plugin" / "notes" / "notes.js").is_file()
    assert (tmp_path / "mathjax" / slides.MATHJAX_ENTRY).is_file()


def test_index_lists_decks_with_titles(built):
    deck, _ = built
    page = slides.index_page([deck])
    assert 'href="07-toy.slides.html"' in page
    assert "A toy chapter" in page and "7 slides" in page


def test_executed_deck_shows_output_and_figure(executed):
    deck, page, out = executed
    assert deck.outputs == "executed"
    assert "OUTPUT_MARKER 42" in page
    figures = list((out / "07-toy_files").glob("*.png"))
    assert len(figures) == 1
    assert f'src="07-toy_files/{figures[0].name}"' in page


def test_hidden_input_shows_only_the_figure(executed):
    _, page, _ = executed
    assert "figsize" not in page


def test_a_removed_cell_hands_its_slide_break_on():
    cells = [nbformat.v4.new_markdown_cell("# Title"),
             nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["remove-cell"],
                                                          "slideshow": {"slide_type": "slide"}}),
             nbformat.v4.new_markdown_cell("## Next")]
    kept = slides.keep(cells, lambda cell: "remove-cell" not in cell.metadata.get("tags", []))
    assert [slides.slide_type(c) for c in kept] == ["-", "slide"]


def test_count_slides_counts_leaf_sections():
    page = ("<section><section>a</section><section>b</section></section>"
            "<section><section>c</section></section>")
    assert slides.count_slides(page) == 3


def test_cdn_references_quote_the_place():
    found = slides.cdn_references('<script src="https://cdn.jsdelivr.net/npm/x.js"></script>')
    assert found and "cdn.jsdelivr.net" in found[0]


def test_a_failing_chapter_is_reported_by_name(tmp_path, monkeypatch):
    bad = tmp_path / "book" / "08-broken.md"
    bad.parent.mkdir()
    bad.write_text(CHAPTER.replace('print("OUTPUT_MARKER", 6 * 7)', 'raise RuntimeError("BROKEN_MARKER")'))
    monkeypatch.setattr(slides, "chapters", lambda: [bad])
    monkeypatch.setattr(slides, "BOOK", bad.parent)
    monkeypatch.setattr(slides, "CACHE_DIR", tmp_path / "no-cache")
    decks, failed = slides.build_all(tmp_path / "out", run=True, jobs=1)
    assert decks == [] and list(failed) == ["08-broken"]
    assert "BROKEN_MARKER" in failed["08-broken"]
    assert not (tmp_path / "out" / "08-broken.slides.html").exists()


# --- figures and tables land on the slide that introduces them ---------------------------------

LONG_CODE = "\n".join(f"step_{i} = {i}  # a line of set-up that only the book needs to show" for i in range(10))
FIGURE_CODE = '''import matplotlib
matplotlib.use("module://matplotlib_inline.backend_inline")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 2.5))
ax.plot([0, 1], [1, 0])
plt.show()'''

FIGURES = FRONT_MATTER + f'''
# Figures on slides

+++ {{"slideshow": {{"slide_type": "slide"}}}}

## Tagged

- the point the figure makes

```{{code-cell}} ipython3
:tags: [slide-output-only]
{LONG_CODE}
{FIGURE_CODE}
```

+++ {{"slideshow": {{"slide_type": "slide"}}}}

## Untagged

- the same figure, its long code shown

```{{code-cell}} ipython3
{LONG_CODE}
{FIGURE_CODE}
```

+++ {{"slideshow": {{"slide_type": "slide"}}}}

## Set-up skipped

- a helper that only the book shows

```{{code-cell}} ipython3
---
slideshow:
  slide_type: skip
---
def helper():  # SKIPPED_HELPER
{LONG_CODE.replace("step_", "    step_")}
```

```{{code-cell}} ipython3
:tags: [hide-input]
{FIGURE_CODE}
```

+++ {{"slideshow": {{"slide_type": "slide"}}}}

## A widget

```{{code-cell}} ipython3
import ipywidgets
display(ipywidgets.IntSlider(value=3))
print("AFTER_WIDGET")
```
'''


def leaf_sections(page: str) -> dict[str, str]:
    """Each slide's HTML (a ``<section>`` holding no other), keyed by its heading's text."""
    found = {}
    for body in re.findall(r"<section[^>]*>((?:(?!<section).)*?)</section>", page, flags=re.S):
        heading = re.search(r"<h[1-4][^>]*>(.*?)<", body, flags=re.S)
        found[heading.group(1).strip() if heading else ""] = body
    return found


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    """A deck whose figures come after long code, executed in a kernel."""
    path = tmp_path_factory.mktemp("book") / "09-figures.md"
    path.write_text(FIGURES)
    out = tmp_path_factory.mktemp("slides-figures")
    deck = slides.build_deck(path, out, run=True, cache_dir=out / "no-cache")
    return leaf_sections(deck.path.read_text())


def test_a_slide_introducing_a_hidden_input_figure_shows_the_image(executed):
    _, page, _ = executed
    body = leaf_sections(page)["A figure"]
    assert "<img" in body and "figsize" not in body


def test_a_slide_output_only_cell_puts_its_figure_on_its_slide_without_its_code(figures):
    body = figures["Tagged"]
    assert "<img" in body and "the point the figure makes" in body
    assert "step_0" not in body and "figsize" not in body


def test_without_the_tag_long_code_pushes_the_figure_off_its_slide(figures):
    assert "step_0" in figures["Untagged"] and "<img" not in figures["Untagged"]
    assert "<img" in figures["Untagged (continued)"]


def test_a_skipped_cell_leaves_its_slide_to_the_figure(figures):
    body = figures["Set-up skipped"]
    assert "<img" in body
    assert not any("SKIPPED_HELPER" in html for html in figures.values())


def test_widgets_are_left_out_of_a_deck(figures):
    body = figures["A widget"]
    assert "AFTER_WIDGET" in body
    assert "IntSlider" in body  # its code stays
    assert "widget-view" not in body  # a box no static page can fill does not
